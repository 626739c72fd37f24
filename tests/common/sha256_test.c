/* SHA-256 and HMAC-SHA-256 against the published vectors (FIPS 180-4
 * examples, RFC 4231), whole and fed across block boundaries. */
#include "common/sha256.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void digest_is(const void *data, size_t len, const char *want)
{
    char hex[MC_SHA256_HEX_LEN + 1];
    mc_sha256_hex(data, len, hex);
    assert_string_equal(hex, want);
}

static void sha256_of_the_fips_examples(void **state)
{
    (void)state;
    digest_is("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    digest_is("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    digest_is(two, strlen(two), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *million = malloc(1000000);
    assert_non_null(million);
    memset(million, 'a', 1000000);
    digest_is(million, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(million);
}

/* Lengths around the padding's edges (55, 56, 63, 64 bytes) differ: the
 * length must land in the right block. */
static void sha256_at_the_block_edges(void **state)
{
    (void)state;
    char buf[65];
    memset(buf, 'a', sizeof(buf));
    digest_is(buf, 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    digest_is(buf, 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    digest_is(buf, 63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34");
    digest_is(buf, 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

static void hmac_is(const void *key, size_t klen, const char *data, const char *want)
{
    uint8_t mac[MC_SHA256_BYTES];
    char hex[MC_SHA256_HEX_LEN + 1];
    mc_hmac_sha256(key, klen, data, strlen(data), mac);
    mc_hex(mac, sizeof(mac), hex);
    assert_string_equal(hex, want);
}

static void hmac_of_the_rfc_4231_cases(void **state)
{
    (void)state;
    uint8_t key[131];
    memset(key, 0x0b, 20);
    hmac_is(key, 20, "Hi There",
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    hmac_is("Jefe", 4, "what do ya want for nothing?",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* A key longer than a block is hashed first. */
    memset(key, 0xaa, sizeof(key));
    hmac_is(key, sizeof(key), "Test Using Larger Than Block-Size Key - Hash Key First",
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha256_of_the_fips_examples),
        cmocka_unit_test(sha256_at_the_block_edges),
        cmocka_unit_test(hmac_of_the_rfc_4231_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
