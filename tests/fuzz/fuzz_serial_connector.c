/* Fuzzes the serial connector plugin's conversions (examples/serial_connector): a chunk read from
 * the line under entries of every type with delimiter and byte slices chosen by the input. */
#include "../../examples/serial_connector/serial_connector.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const types[] = {"string", "json", "int", "float", "double", "bool", "hex"};
    if (size < 4 || size > RX_MAX) return 0;
    json_t *e = json_object();
    json_object_set_new(e, "type", json_string(types[data[0] % 7]));
    if (data[1] & 1) json_object_set_new(e, "fromByte", json_integer((int8_t)data[2]));
    if (data[1] & 2) json_object_set_new(e, "toByte", json_integer((int8_t)data[3]));
    char d1[2] = {(char)(data[2] | 1), 0}, d2[2] = {(char)(data[3] | 1), 0};
    if (data[1] & 4) json_object_set_new(e, "fromDelimiter", json_string(d1));
    if (data[1] & 8) json_object_set_new(e, "untilDelimiter", json_string(d2));
    char buf[RX_MAX * 2 + 1];
    json_t *js = NULL;
    char *tmp = NULL;
    tbgw_value v;
    const char *why;
    if (convert_value(e, data + 4, size - 4, &v, buf, sizeof buf, &js, &tmp, &why) == 0 &&
        v.type == TBGW_V_STRING)
        (void)strlen(v.u.s);
    json_decref(js);
    free(tmp);
    json_decref(e);
    return 0;
}
