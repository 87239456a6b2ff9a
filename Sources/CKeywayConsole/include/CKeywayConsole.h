#ifndef CKEYWAYCONSOLE_H
#define CKEYWAYCONSOLE_H
/* The console's line editor: libedit in emacs mode with the usual keys bound explicitly, and
   Tab and '?' calling back into Swift. The callbacks get the text before the cursor and write
   their answer into `out` (at most `capacity` bytes, NUL-terminated). */

enum kw_answer { KW_NOTHING = 0, KW_INSERT = 1, KW_SHOW = 2 };

typedef int (*kw_console_fn)(void *context, const char *before_cursor, char *out, int capacity);

typedef struct kw_console kw_console;

kw_console *kw_console_open(const char *program, void *context, kw_console_fn complete, kw_console_fn help);
/* One line without its newline, owned by the console until the next call; NULL at end of input. */
const char *kw_console_read(kw_console *console, const char *prompt);
void kw_console_remember(kw_console *console, const char *line);
void kw_console_close(kw_console *console);

#endif
