/*
 * cheribsd_minimal - the smallest CheriBSD-style client: it includes only
 * <unistd.h> and <capv.h>, where CheriBSD declares the colocation API and
 * the message layouts, and asks capv entry 8 (clocks(1)) for its answerback
 * and the time.  Built with
 *     cc cheribsd_minimal.c $(pkg-config --cflags --libs colo libbsd-overlay)
 * (CompatTests).  Exit status: 0 if both calls were answered as expected.
 */
#include <unistd.h>
#include <capv.h>

static void
say(const char *s)
{
	const char *e = s;

	while (*e != '\0')
		e++;
	write(1, s, e - s);
}

int
main(void)
{
	void * __capability *capv;
	void * __capability target;
	capv_t out;
	capv_answerback_t in;
	capv_clocks_t now;
	ssize_t received;
	int capc;

	capvfetch(&capc, &capv);
	if (capc <= CAPV_CLOCKS || capv[CAPV_CLOCKS] == NULL) {
		say("no clocks\n");
		return (1);
	}
	target = capv[CAPV_CLOCKS];
	if (cosetup(COSETUP_COCALL) != 0)
		return (2);

	out.len = sizeof(out);
	out.op = 0;
	received = cocall(target, &out, out.len, &in, sizeof(in));
	if (received < 0 || (size_t)received != in.len || in.len != sizeof(in))
		return (3);
	in.answerback[sizeof(in.answerback) - 1] = '\0';
	say(in.answerback);
	say("\n");

	out.len = sizeof(out);
	out.op = CAPV_CLOCKS + CLOCK_REALTIME;
	received = cocall(target, &out, out.len, &now, sizeof(now));
	if (received != sizeof(now) || now.len != sizeof(now) || now.op != -CAPV_CLOCKS ||
	    now.error != 0 || now.ts.tv_sec < 1000000000)
		return (4);
	say("time ok\n");
	return (0);
}
