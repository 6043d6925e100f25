// A program that exits with status 5 (the child of the reproductions here).
int main(void) { return 5; }
