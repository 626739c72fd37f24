#!/usr/bin/env bash
# The release programs are built hardened: position-independent (PIE),
# relocations read-only once loaded (full RELRO: GNU_RELRO and BIND_NOW),
# stack canaries (-fstack-protector-strong) and checked libc calls
# (-D_FORTIFY_SOURCE=2). The test brings the release build up to date with
# make (a no-op when it is) and reads each program with readelf.
set -u
# shellcheck source=tests/deploy/lib.sh
source "$(dirname "$0")/lib.sh"

programs=(chat-interface chat-worker chatctl)
echo "1..$((1 + 4 * ${#programs[@]}))"
out=$(make -C "$src" --no-print-directory FLAVOUR=release programs 2>&1)
status=$?
report $status "the release programs build" "$(tail -20 <<<"$out")"
[ $status -eq 0 ] || finish

for p in "${programs[@]}"; do
    exe=$src/build/release/bin/$p
    head=$(readelf -hW "$exe")
    dyn=$(readelf -dW "$exe")
    seg=$(readelf -lW "$exe")
    syms=$(readelf -sW --dyn-syms "$exe")
    grep -q 'Type:.*DYN' <<<"$head" && grep -q 'FLAGS_1.*PIE' <<<"$dyn"
    report $? "$p is position-independent (PIE)" "$(grep -E 'Type:|FLAGS' <<<"$head$dyn")"
    grep -q GNU_RELRO <<<"$seg" && grep -qE 'BIND_NOW|FLAGS.*NOW' <<<"$dyn"
    report $? "$p has full RELRO (GNU_RELRO and BIND_NOW)" "$(grep -E 'RELRO|FLAGS' <<<"$seg$dyn")"
    grep -q '__stack_chk_fail' <<<"$syms"
    report $? "$p has stack canaries (__stack_chk_fail)"
    grep -qE '__[a-z0-9_]+_chk(@|$)' <<<"$(grep -v __stack_chk_fail <<<"$syms")"
    report $? "$p calls the checked libc functions of _FORTIFY_SOURCE (__*_chk)"
done
finish
