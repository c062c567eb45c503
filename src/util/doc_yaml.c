/* YAML configuration documents (the reference accepts tb_gateway.yaml): libyaml's document API
 * converted to jansson, recording each node's position for error messages. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "util/buf.h"
#include "util/doc.h"

static void remember(tbgw_doc *d, const char *path, const yaml_mark_t *m) {
    uintptr_t p = ((uintptr_t)(m->line + 1) << 20) | (uintptr_t)((m->column + 1) & 0xFFFFF);
    tbgw_hmap_put(&d->yaml_pos, path, (void *)p, NULL);
}

static json_t *scalar_to_json(const yaml_node_t *n) {
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
        n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE ||
        n->data.scalar.style == YAML_LITERAL_SCALAR_STYLE || n->data.scalar.style == YAML_FOLDED_SCALAR_STYLE)
        return json_stringn(s, len);
    if (len == 0 || strcmp(s, "~") == 0 || strcasecmp(s, "null") == 0) return json_null();
    if (strcasecmp(s, "true") == 0) return json_true();
    if (strcasecmp(s, "false") == 0) return json_false();
    char *end;
    errno = 0;
    long long ll = strtoll(s, &end, 10);
    if (*end == 0 && errno == 0) return json_integer(ll);
    errno = 0;
    double dd = strtod(s, &end);
    if (*end == 0 && errno == 0 && strpbrk(s, "0123456789")) return json_real(dd);
    return json_stringn(s, len);
}

static json_t *node_to_json(tbgw_doc *d, yaml_document_t *doc, yaml_node_t *n, tbgw_buf *path, int depth) {
    if (!n || depth > 256) return NULL;
    remember(d, tbgw_buf_cstr(path), &n->start_mark);
    size_t base = path->len;
    json_t *out = NULL;
    switch (n->type) {
    case YAML_SCALAR_NODE:
        out = scalar_to_json(n);
        break;
    case YAML_SEQUENCE_NODE: {
        out = json_array();
        int i = 0;
        for (yaml_node_item_t *it = n->data.sequence.items.start; out && it < n->data.sequence.items.top;
             it++, i++) {
            path->len = base;
            tbgw_buf_printf(path, "[%d]", i);
            json_t *v = node_to_json(d, doc, yaml_document_get_node(doc, *it), path, depth + 1);
            if (!v) {
                json_decref(out);
                out = NULL;
                break;
            }
            json_array_append_new(out, v);
        }
        break;
    }
    case YAML_MAPPING_NODE: {
        out = json_object();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; out && p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            if (!k || k->type != YAML_SCALAR_NODE) continue;
            path->len = base;
            if (base) tbgw_buf_putc(path, '.');
            tbgw_buf_puts(path, (const char *)k->data.scalar.value);
            json_t *v = node_to_json(d, doc, yaml_document_get_node(doc, p->value), path, depth + 1);
            if (!v) {
                json_decref(out);
                out = NULL;
                break;
            }
            json_object_set_new(out, (const char *)k->data.scalar.value, v);
        }
        break;
    }
    default:
        break;
    }
    path->len = base;
    if (path->p) path->p[base] = 0;
    return out;
}

tbgw_doc *tbgw_doc_parse_yaml(const char *path, const char *text, size_t len, tbgw_err *err) {
    tbgw_doc *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->is_yaml = 1;
    d->path = strdup(path);
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        tbgw_doc_free(d);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        tbgw_err_set(err, TBGW_EINVAL, "%s:%zu:%zu: invalid YAML: %s", path, parser.problem_mark.line + 1,
                     parser.problem_mark.column + 1, parser.problem ? parser.problem : "syntax error");
        yaml_parser_delete(&parser);
        tbgw_doc_free(d);
        return NULL;
    }
    tbgw_buf p;
    tbgw_buf_init(&p);
    tbgw_buf_cstr(&p);
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    d->root = root ? node_to_json(d, &doc, root, &p, 0) : json_object();
    tbgw_buf_free(&p);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (!d->root) {
        tbgw_err_set(err, TBGW_EINVAL, "%s:1:1: YAML document could not be converted", path);
        tbgw_doc_free(d);
        return NULL;
    }
    return d;
}
