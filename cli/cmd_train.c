/* genred train: placeholder until the training work lands. */
#include <stdio.h>

#include "commands.h"

int cmd_train(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "genred train: not implemented yet\n");
    return 2;
}
