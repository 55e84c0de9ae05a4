/* placeholder: tools/okto-bench.c is being written */
int main(void) { return 0; }
