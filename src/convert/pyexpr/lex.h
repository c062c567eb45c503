/* Tokenizer of Python expressions (used by parse.c; def.c uses the identifier helpers). */
#ifndef TBGW_CONVERT_PYEXPR_LEX_H
#define TBGW_CONVERT_PYEXPR_LEX_H

#include "convert/pyexpr/internal.h"

enum {
    T_END = 0,
    T_NAME = 256,
    T_NUM,  /* val */
    T_STR,  /* val (PT_STR or PT_BYTES) */
    T_FSTR, /* body [a, b) of the source, raw in flag */
    /* multi-character operators */
    T_POW,
    T_FLOORDIV,
    T_LSHIFT,
    T_RSHIFT,
    T_LE,
    T_GE,
    T_EQ,
    T_NE,
    T_ARROW,
    T_WALRUS,
    T_ELLIPSIS,
    T_AUGASSIGN,
    /* keywords */
    T_FALSE,
    T_NONE,
    T_TRUE,
    T_AND,
    T_ELSE,
    T_FOR,
    T_IF,
    T_IN,
    T_IS,
    T_LAMBDA,
    T_NOT,
    T_OR,
    T_KW_OTHER, /* a keyword that has no place in an expression (import, yield, ...) */
};

typedef struct py_tok {
    int t;
    uint32_t pos, end; /* source span */
    uint32_t a, b;     /* T_FSTR body */
    int raw;
    pv val;
} py_tok;

typedef struct py_lexer {
    const char *src;
    size_t len;
    X *x; /* constants are allocated here; errors longjmp through x->jb */
    size_t *err_off;
} py_lexer;

/* Tokenizes src[from, to); returns a malloc'ed array ending with T_END (*n includes it). Raises
 * (x->errmsg, *err_off) on a lexical error; the array is then freed by the caller via *out. */
void py_lex(py_lexer *lx, size_t from, size_t to, py_tok **out, size_t *n);
/* Decodes a string literal body with escapes (raw: none). bytes: only ASCII allowed. */
pv py_decode_literal(py_lexer *lx, size_t a, size_t b, int raw, int bytes);
/* Identifier characters (ASCII letters, '_', digits after the first, any non-ASCII byte). */
int py_is_id_start(unsigned char c);
int py_is_id(unsigned char c);
/* The keyword token of s[0, n) (T_FALSE ... T_KW_OTHER), or 0 for a plain name. */
int py_keyword(const char *s, size_t n);
_Noreturn void py_syntax(py_lexer *lx, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
