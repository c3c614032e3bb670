/* The subcommands of the genred binary: each parses its own argv (argv[0] is the subcommand
 * name), prints its own --help, and returns the process exit status (0 ok, 1 some input
 * failed, 2 usage error). main.c only dispatches. */
#ifndef GENRED_COMMANDS_H
#define GENRED_COMMANDS_H

int cmd_classify(int argc, char **argv);
int cmd_tag(int argc, char **argv);
int cmd_mel(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_finetune(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_untag(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#endif
