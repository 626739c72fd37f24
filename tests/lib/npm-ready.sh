# Sourced by the JavaScript test scripts: installs tests/package-lock.json's
# packages into tests/node_modules on first use, once even when two scripts
# start together.
(
    cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
    flock 9
    if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/ws ]; then
        npm ci --no-audit --no-fund --loglevel=error >&2
    fi
) 9>"${TMPDIR:-/tmp}/multichat-npm.lock"
