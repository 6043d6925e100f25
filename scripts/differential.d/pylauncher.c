// A PIE python3 over Debian's libpython3.11.so: Debian's /usr/bin/python3.11 is not PIE, so colo would not colocate it.
extern int Py_BytesMain(int argc, char **argv);
int main(int argc, char **argv) { return Py_BytesMain(argc, argv); }
