/* Internals of the DPT table shared by knx_dpt.c (table, lookup) and knx_dpt_codec.c. */
#ifndef TBGW_PROTO_KNX_DPT_INT_H
#define TBGW_PROTO_KNX_DPT_INT_H

#include "proto/knx/knx_dpt.h"

typedef enum knx_kind {
    K_BOOL,       /* 1.x: 1 bit */
    K_CTRL2,      /* 2.x: control + value bits */
    K_CTRL4,      /* 3.x: direction + 3-bit step code */
    K_U8,         /* 5.x */
    K_SCALE8,     /* 5.001, 5.003: 0..255 mapped to 0..max */
    K_S8,         /* 6.x */
    K_U16,        /* 7.x (times factor) */
    K_S16,        /* 8.x (times factor) */
    K_F16,        /* 9.x: 2-octet float */
    K_TIME,       /* 10.001 */
    K_DATE,       /* 11.001 */
    K_U32,        /* 12.x */
    K_S32,        /* 13.x */
    K_F32,        /* 14.x: IEEE 754 single */
    K_STR_ASCII,  /* 16.000 */
    K_STR_LATIN1, /* 16.001 */
    K_SCENE,      /* 17.001: 1..64 on the wire as 0..63 */
    K_SCENE_CTRL, /* 18.001 */
    K_DATETIME,   /* 19.001 */
    K_ENUM8,      /* 20.x */
    K_RGB,        /* 232.600 */
} knx_kind;

struct knx_dpt {
    const char *name;
    uint16_t main, sub;
    knx_kind kind;
    double min, max;          /* value range after scaling (numeric kinds; both 0 = the raw range) */
    double factor;            /* decoded = raw * factor (K_U16/K_S16; 0 means 1) */
    const char *const *names; /* K_ENUM8: value -> name */
    uint8_t n_names;
};

#endif
