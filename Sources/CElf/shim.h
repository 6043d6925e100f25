/* CElf: libelf's <gelf.h> for Swift (the loader takes its ELF types from it). */
#include <libelf.h>
#include <gelf.h>
