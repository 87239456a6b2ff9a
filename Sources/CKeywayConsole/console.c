#include "CKeywayConsole.h"
#include <histedit.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kw_console {
    EditLine *el;
    History *history;
    HistEvent event;
    char prompt[512];
    char line[65536];
    void *context;
    kw_console_fn complete;
    kw_console_fn help;
};

static struct kw_console *of(EditLine *el) {
    void *c = NULL;
    el_get(el, EL_CLIENTDATA, &c);
    return c;
}

static char *prompt_of(EditLine *el) { return of(el)->prompt; }

/* The text before the cursor, NUL-terminated. */
static void before_cursor(EditLine *el, char *buf, size_t capacity) {
    const LineInfo *li = el_line(el);
    size_t n = (size_t)(li->cursor - li->buffer);
    if (n >= capacity) n = capacity - 1;
    memcpy(buf, li->buffer, n);
    buf[n] = 0;
}

static unsigned char ask(EditLine *el, kw_console_fn fn) {
    struct kw_console *c = of(el);
    static char text[4096], out[32768];
    before_cursor(el, text, sizeof text);
    out[0] = 0;
    switch (fn(c->context, text, out, (int)sizeof out)) {
    case KW_INSERT:
        if (el_insertstr(el, out) != 0) return CC_ERROR;
        return CC_REFRESH;
    case KW_SHOW:
        fprintf(stdout, "\n%s\n", out);
        fflush(stdout);
        return CC_REDISPLAY;
    default:
        return CC_REFRESH_BEEP;
    }
}

static unsigned char complete_key(EditLine *el, int ch) { (void)ch; return ask(el, of(el)->complete); }
static unsigned char help_key(EditLine *el, int ch) { (void)ch; return ask(el, of(el)->help); }

/* Ctrl-C: drop the line being typed and start a fresh one (the console keeps running). */
static unsigned char cancel_key(EditLine *el, int ch) {
    (void)ch;
    const LineInfo *li = el_line(el);
    el_cursor(el, (int)(li->lastchar - li->cursor));
    li = el_line(el);
    el_deletestr(el, (int)(li->cursor - li->buffer));
    fputs("^C\n", stdout);
    fflush(stdout);
    return CC_REDISPLAY;
}

kw_console *kw_console_open(const char *program, void *context, kw_console_fn complete, kw_console_fn help) {
    setlocale(LC_CTYPE, "");
    struct kw_console *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->context = context;
    c->complete = complete;
    c->help = help;
    c->el = el_init(program, stdin, stdout, stderr);
    c->history = history_init();
    if (!c->el || !c->history) { kw_console_close(c); return NULL; }
    history(c->history, &c->event, H_SETSIZE, 500);
    history(c->history, &c->event, H_SETUNIQUE, 1);
    el_set(c->el, EL_CLIENTDATA, c);
    el_set(c->el, EL_EDITOR, "emacs");
    el_set(c->el, EL_SIGNAL, 1);
    el_set(c->el, EL_PROMPT, prompt_of);
    el_set(c->el, EL_HIST, history, c->history);
    /* Ctrl-C edits (cancels the line) rather than killing the console. */
    el_set(c->el, EL_SETTY, "-d", "-isig", NULL);
    el_set(c->el, EL_ADDFN, "keyway-complete", "complete a menu, command or property", complete_key);
    el_set(c->el, EL_ADDFN, "keyway-help", "what may come next", help_key);
    el_set(c->el, EL_ADDFN, "keyway-cancel", "cancel the line", cancel_key);
    /* The usual keys, bound explicitly rather than trusting the defaults of a libedit build. */
    static const char *const keys[][2] = {
        {"^I", "keyway-complete"}, {"?", "keyway-help"}, {"^C", "keyway-cancel"},
        {"^A", "ed-move-to-beg"}, {"^E", "ed-move-to-end"}, {"^B", "ed-prev-char"}, {"^F", "ed-next-char"},
        {"^U", "vi-kill-line-prev"}, {"^K", "ed-kill-line"}, {"^W", "ed-delete-prev-word"}, {"^Y", "em-yank"},
        {"\\eb", "ed-prev-word"}, {"\\ef", "em-next-word"}, {"\\ed", "em-delete-next-word"},
        {"^R", "em-inc-search-prev"}, {"^P", "ed-prev-history"}, {"^N", "ed-next-history"},
        {"^L", "ed-clear-screen"},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) el_set(c->el, EL_BIND, keys[i][0], keys[i][1], NULL);
    return c;
}


const char *kw_console_read(kw_console *c, const char *prompt) {
    snprintf(c->prompt, sizeof c->prompt, "%s", prompt);
    int count = 0;
    const char *got = el_gets(c->el, &count);
    if (!got || count <= 0) return NULL;
    size_t n = (size_t)count;
    if (n >= sizeof c->line) n = sizeof c->line - 1;
    memcpy(c->line, got, n);
    while (n > 0 && (c->line[n - 1] == '\n' || c->line[n - 1] == '\r')) n--;
    c->line[n] = 0;
    return c->line;
}

void kw_console_remember(kw_console *c, const char *line) {
    if (line[0]) history(c->history, &c->event, H_ENTER, line);
}

void kw_console_close(kw_console *c) {
    if (!c) return;
    if (c->el) el_end(c->el);
    if (c->history) history_end(c->history);
    free(c);
}
