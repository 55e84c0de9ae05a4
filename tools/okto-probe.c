/* placeholder: tools/okto-probe.c is being written */
int main(void) { return 0; }
