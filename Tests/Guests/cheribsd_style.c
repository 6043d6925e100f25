/*
 * cheribsd_style - a colocation program written the way CheriBSD's are: it
 * includes only the headers CheriBSD declares the API in (<unistd.h>,
 * <capv.h>, <sys/auxv.h>) and <err.h>/<stdio.h>, and is built with
 *     cc cheribsd_style.c $(pkg-config --cflags --libs colo libbsd-overlay)
 * (CompatTests).  Nothing here is colo-specific.
 *
 *   cheribsd_style [-k] -a              answerback of every capv entry
 *   cheribsd_style [-k] -s name         serve as "name": answerback for op 0,
 *                                       anything else echoed with op negated
 *   cheribsd_style [-k] -c name count   cocall "name" count times
 */
#include <sys/auxv.h>
#include <capv.h>
#include <err.h>
#include <stdio.h>
#include <unistd.h>

static int kflag;

static void
usage(void)
{

	fprintf(stderr, "usage: cheribsd_style [-k] -a\n"
	    "       cheribsd_style [-k] -s name\n"
	    "       cheribsd_style [-k] -c name count\n");
	_exit(0);
}

static ssize_t
call(void * __capability target, capv_t *out, capv_answerback_t *in)
{

	if (kflag)
		return (cocall_slow(target, out, out->len, in, sizeof(*in)));
	return (cocall(target, out, out->len, in, sizeof(*in)));
}

static int
list(void)
{
	void * __capability *capv, * __capability *auxv_capv;
	capv_answerback_t in;
	capv_t out = { 0 };
	ssize_t received;
	int capc, auxv_capc, error, i;

	capvfetch(&capc, &capv);
	if (capc <= 0)
		errx(1, "no capability vector");
	error = elf_aux_info(AT_CAPC, &auxv_capc, sizeof(auxv_capc));
	if (error != 0)
		errc(1, error, "AT_CAPC");
	error = elf_aux_info(AT_CAPV, &auxv_capv, sizeof(auxv_capv));
	if (error != 0)
		errc(1, error, "AT_CAPV");
	printf("capc %d, auxv agrees %d\n", capc, auxv_capc == capc && auxv_capv == capv);

	error = cosetup(COSETUP_COCALL);
	if (error != 0)
		err(1, "cosetup");
	for (i = 0; i < capc; i++) {
		if (capv[i] == NULL)
			continue;
		out.len = sizeof(out);
		out.op = 0;
		received = call(capv[i], &out, &in);
		if (received < 0) {
			warn("cocall");
			continue;
		}
		if ((size_t)received != in.len)
			warnx("truncated: received %zd, in.len %zd", received, in.len);
		in.answerback[sizeof(in.answerback) - 1] = '\0';
		printf("%d: \"%s\"\n", i, in.answerback);
	}
	return (0);
}

static int
serve(const char *name)
{
	union {
		capv_answerback_t answerback;
		capv_t echo;
	} out;
	capv_t in;
	void * __capability cookie;
	ssize_t received;
	size_t outlen = 0;
	pid_t pid;
	int error;

	error = cosetup(COSETUP_COACCEPT);
	if (error != 0)
		err(1, "cosetup");
	error = coregister(name, NULL);
	if (error != 0)
		err(1, "coregister");
	printf("pid=%d\nready\n", getpid());
	fflush(stdout);

	for (;;) {
		if (kflag)
			received = coaccept_slow(&cookie, &out, outlen, &in, sizeof(in));
		else
			received = coaccept(&cookie, &out, outlen, &in, sizeof(in));
		if (received < 0) {
			warn("coaccept");
			outlen = 0;
			continue;
		}
		error = cocachedpid(&pid, cookie);
		if (error != 0)
			warn("cocachedpid");
		printf("%s: op %d, len %zd, received %zd from pid %d\n", name, in.op, in.len, received, pid);
		fflush(stdout);
		if (in.op == 0) {
			out.answerback.len = sizeof(out.answerback);
			out.answerback.op = 0;
			snprintf(out.answerback.answerback, sizeof(out.answerback.answerback),
			    "cheribsd_style(1), pid %d, serving \"%s\"%s", getpid(), name, kflag ? " (slow)" : "");
			outlen = sizeof(out.answerback);
		} else {
			out.echo.len = sizeof(out.echo);
			out.echo.op = -in.op;
			outlen = sizeof(out.echo);
		}
	}
}

static int
client(const char *name, int count)
{
	void * __capability target;
	capv_answerback_t in;
	capv_t out = { 0 };
	ssize_t received;
	int error, i;

	error = colookup(name, &target);
	if (error != 0)
		err(1, "colookup");
	error = cosetup(COSETUP_COCALL);
	if (error != 0)
		err(1, "cosetup");
	for (i = 0; i < count; i++) {
		out.len = sizeof(out);
		out.op = 0;
		in.len = 0;
		in.answerback[0] = '\0';
		received = call(target, &out, &in);
		if (received < 0)
			err(1, "cocall");
		in.answerback[sizeof(in.answerback) - 1] = '\0';
		printf("received %zd, len %zd, op %d: \"%s\"\n", received, in.len, in.op,
		    in.len == sizeof(in) ? in.answerback : "");
	}
	return (0);
}

int
main(int argc, char **argv)
{
	const char *name = NULL;
	int aflag = 0, ch, count = 0, mode = 0;
	const char *p;

	while ((ch = getopt(argc, argv, "ac:ks:")) != -1) {
		switch (ch) {
		case 'a':
			aflag = 1;
			mode++;
			break;
		case 'c':
		case 's':
			name = optarg;
			mode += ch == 'c' ? 10 : 100;
			break;
		case 'k':
			kflag = 1;
			break;
		case '?':
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;

	if (aflag && mode == 1 && argc == 0)
		return (list());
	if (mode == 100 && argc == 0)
		return (serve(name));
	if (mode == 10 && argc == 1) {
		for (p = argv[0]; *p >= '0' && *p <= '9'; p++)
			count = count * 10 + (*p - '0');
		if (*p != '\0' || count <= 0)
			errx(1, "count must be a positive number");
		return (client(name, count));
	}
	usage();
	return (0);
}
