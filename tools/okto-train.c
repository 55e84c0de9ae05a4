/* placeholder: tools/okto-train.c is being written */
int main(void) { return 0; }
