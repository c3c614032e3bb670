/* genred eval: placeholder until the training work lands. */
#include <stdio.h>

#include "commands.h"

int cmd_eval(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "genred eval: not implemented yet\n");
    return 2;
}
