/* checksrc fixture: test code. snprintf-unchecked is for product code only; the rest holds. */
#include <stdio.h>
#include <stdlib.h>

static int helper(const char *s)
{
    char b[8];
    snprintf(b, sizeof(b), "%s", s);
    return atoi(b);
}

int test_visible(void)
{
    return helper("1");
}

int main(void)
{
    return test_visible();
}
