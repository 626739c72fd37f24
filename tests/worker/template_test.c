#include "common/error.h"
#include "worker/template.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static char *render(const char *text, const wrk_template_var_t *vars, size_t n)
{
    char *out;
    size_t len;
    assert_int_equal(wrk_template_render_text(text, strlen(text), vars, n, &out, &len), 0);
    assert_int_equal(strlen(out), len);
    return out;
}

static void holes_are_filled_and_escaped(void **state)
{
    (void)state;
    wrk_template_var_t vars[] = {{"name", "<b>\"Tom\" & 'Jerry'</b>"}, {"n", "1"}};
    char *out = render("Hi {{name}}! {{n}}{{n}} {{missing}}.", vars, 2);
    assert_string_equal(out, "Hi &lt;b&gt;&quot;Tom&quot; &amp; &#x27;Jerry&#x27;&lt;/b&gt;! 11 .");
    free(out);
}

static void unclosed_holes_stay_as_text(void **state)
{
    (void)state;
    char *out = render("a {{b", NULL, 0);
    assert_string_equal(out, "a {{b");
    free(out);
    out = render("{", NULL, 0);
    assert_string_equal(out, "{");
    free(out);
    out = render("", NULL, 0);
    assert_string_equal(out, "");
    free(out);
}

static void a_missing_file_is_not_found(void **state)
{
    (void)state;
    char *out;
    size_t len;
    assert_int_equal(wrk_template_render("/nonexistent/x.html", NULL, 0, &out, &len), MC_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(holes_are_filled_and_escaped),
        cmocka_unit_test(unclosed_holes_stay_as_text),
        cmocka_unit_test(a_missing_file_is_not_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
