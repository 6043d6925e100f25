/* CSeccomp: libseccomp's <seccomp.h> for Swift (system-call names for the tracers). */
#include <seccomp.h>
