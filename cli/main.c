#include <stdio.h>
int main(void) { puts("genred: not built yet"); return 0; }
