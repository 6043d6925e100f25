/* bytes_echo: prints its argv, the B_* environment variables and /proc/self/exe in hex, one
 * "key=hex" line each, so that a test can check every byte arrived as it was sent. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static void hex(const char *key, const char *s) {
    printf("%s=", key);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) printf("%02x", *p);
    printf("\n");
}

int main(int argc, char **argv) {
    char key[64];
    printf("pid=%d\n", (int)getpid());
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++) {
        snprintf(key, sizeof key, "argv%d", i);
        hex(key, argv[i]);
    }
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "B_", 2) != 0) continue;
        const char *eq = strchr(*e, '=');
        snprintf(key, sizeof key, "env_%.*s", (int)(eq - *e), *e);
        hex(key, eq + 1);
    }
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd)) hex("cwd", cwd);
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n >= 0) { exe[n] = 0; hex("exe", exe); }
    return 0;
}
