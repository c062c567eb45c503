/* KNX datapoint type table and codecs (see knx_dpt.h). Value ranges and encodings follow the KNX
 * standard's datapoint type definitions (3/7/2). */
#include "proto/knx/knx_dpt.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <tbgw/err.h>

#include "proto/knx/knx_dpt_int.h"

static const char *const hvac_mode[] = {"Auto", "Comfort", "Standby", "Economy", "Building Protection"};
static const char *const hvac_contr_mode[] = {"Auto",     "Heat",        "Morning Warmup",
                                              "Cool",     "Night Purge", "Precool",
                                              "Off",      "Test",        "Emergency Heat",
                                              "Fan only", "Free Cool",   "Ice",
                                              NULL,       NULL,          NULL,
                                              NULL,       NULL,          NULL,
                                              NULL,       NULL,          "Dehumidification"};

#define B(n, s)                                                                                              \
    { n, 1, s, K_BOOL, 0, 1, 0, NULL, 0 }
#define N(n, m, s, k, a, b)                                                                                  \
    { n, m, s, k, a, b, 0, NULL, 0 }
#define NF(n, m, s, k, f)                                                                                    \
    { n, m, s, k, 0, 0, f, NULL, 0 }
#define F14(n, s)                                                                                            \
    { n, 14, s, K_F32, 0, 0, 0, NULL, 0 }

static const knx_dpt table[] = {
    /* 1.x */
    B("binary", 0),
    B("switch", 1),
    B("bool", 2),
    B("enable", 3),
    B("ramp", 4),
    B("alarm", 5),
    B("binary_value", 6),
    B("step", 7),
    B("up_down", 8),
    B("open_close", 9),
    B("start", 10),
    B("state", 11),
    B("invert", 12),
    B("dim_send_style", 13),
    B("input_source", 14),
    B("reset", 15),
    B("ack", 16),
    B("trigger", 17),
    B("occupancy", 18),
    B("window_door", 19),
    B("logical_function", 21),
    B("scene_ab", 22),
    B("shutter_blinds_mode", 23),
    B("day_night", 24),
    B("heat_cool", 100),
    /* 2.x */
    N("2bit_control", 2, 0, K_CTRL2, 0, 0),
    N("switch_control", 2, 1, K_CTRL2, 0, 0),
    N("bool_control", 2, 2, K_CTRL2, 0, 0),
    N("enable_control", 2, 3, K_CTRL2, 0, 0),
    N("ramp_control", 2, 4, K_CTRL2, 0, 0),
    N("alarm_control", 2, 5, K_CTRL2, 0, 0),
    N("binary_value_control", 2, 6, K_CTRL2, 0, 0),
    N("step_control", 2, 7, K_CTRL2, 0, 0),
    N("direction1_control", 2, 8, K_CTRL2, 0, 0),
    N("direction2_control", 2, 9, K_CTRL2, 0, 0),
    N("start_control", 2, 10, K_CTRL2, 0, 0),
    N("state_control", 2, 11, K_CTRL2, 0, 0),
    N("invert_control", 2, 12, K_CTRL2, 0, 0),
    /* 3.x */
    N("4bit_control", 3, 0, K_CTRL4, 0, 0),
    N("control_dimming", 3, 7, K_CTRL4, 0, 0),
    N("control_blinds", 3, 8, K_CTRL4, 0, 0),
    /* 5.x */
    N("1byte_unsigned", 5, 0, K_U8, 0, 255),
    N("percent", 5, 1, K_SCALE8, 0, 100),
    N("angle", 5, 3, K_SCALE8, 0, 360),
    N("percentU8", 5, 4, K_U8, 0, 255),
    N("decimal_factor", 5, 5, K_U8, 0, 255),
    N("tariff", 5, 6, K_U8, 0, 254),
    N("pulse", 5, 10, K_U8, 0, 255),
    /* 6.x */
    N("1byte_signed", 6, 0, K_S8, -128, 127),
    N("percentV8", 6, 1, K_S8, -128, 127),
    N("counter_pulses", 6, 10, K_S8, -128, 127),
    /* 7.x */
    NF("2byte_unsigned", 7, 0, K_U16, 1),
    NF("pulse_2byte", 7, 1, K_U16, 1),
    NF("time_period_msec", 7, 2, K_U16, 1),
    NF("time_period_10msec", 7, 3, K_U16, 10),
    NF("time_period_100msec", 7, 4, K_U16, 100),
    NF("time_period_sec", 7, 5, K_U16, 1),
    NF("time_period_min", 7, 6, K_U16, 1),
    NF("time_period_hrs", 7, 7, K_U16, 1),
    NF("length_mm", 7, 11, K_U16, 1),
    NF("current", 7, 12, K_U16, 1),
    NF("brightness", 7, 13, K_U16, 1),
    NF("color_temperature", 7, 600, K_U16, 1),
    /* 8.x */
    NF("2byte_signed", 8, 0, K_S16, 1),
    NF("pulse_2byte_signed", 8, 1, K_S16, 1),
    NF("delta_time_ms", 8, 2, K_S16, 1),
    NF("delta_time_10ms", 8, 3, K_S16, 10),
    NF("delta_time_100ms", 8, 4, K_S16, 100),
    NF("delta_time_sec", 8, 5, K_S16, 1),
    NF("delta_time_min", 8, 6, K_S16, 1),
    NF("delta_time_hrs", 8, 7, K_S16, 1),
    NF("percentV16", 8, 10, K_S16, 0.01),
    NF("rotation_angle", 8, 11, K_S16, 1),
    NF("length_m", 8, 12, K_S16, 1),
    /* 9.x */
    N("2byte_float", 9, 0, K_F16, -671088.64, 670760.96),
    N("temperature", 9, 1, K_F16, -273, 670760),
    N("temperature_difference_2byte", 9, 2, K_F16, -670760, 670760),
    N("temperature_a", 9, 3, K_F16, -670760, 670760),
    N("illuminance", 9, 4, K_F16, 0, 670760),
    N("wind_speed_ms", 9, 5, K_F16, 0, 670760),
    N("pressure_2byte", 9, 6, K_F16, 0, 670760),
    N("humidity", 9, 7, K_F16, 0, 670760),
    N("ppm", 9, 8, K_F16, 0, 670760),
    N("air_flow", 9, 9, K_F16, -670760, 670760),
    N("time_1", 9, 10, K_F16, -670760, 670760),
    N("time_2", 9, 11, K_F16, -670760, 670760),
    N("voltage", 9, 20, K_F16, -670760, 670760),
    N("curr", 9, 21, K_F16, -670760, 670760),
    N("power_density", 9, 22, K_F16, -670760, 670760),
    N("kelvin_per_percent", 9, 23, K_F16, -670760, 670760),
    N("power_2byte", 9, 24, K_F16, -670760, 670760),
    N("volume_flow", 9, 25, K_F16, -670760, 670760),
    N("rain_amount", 9, 26, K_F16, -671088.64, 670760.96),
    N("temperature_f", 9, 27, K_F16, -459.6, 670760),
    N("wind_speed_kmh", 9, 28, K_F16, 0, 670760),
    N("absolute_humidity", 9, 29, K_F16, 0, 670760),
    N("concentration_ugm3", 9, 30, K_F16, 0, 670760),
    /* 10, 11 */
    N("time", 10, 1, K_TIME, 0, 0),
    N("date", 11, 1, K_DATE, 0, 0),
    /* 12.x */
    N("4byte_unsigned", 12, 0, K_U32, 0, 0),
    N("pulse_4_ucount", 12, 1, K_U32, 0, 0),
    N("long_time_period_sec", 12, 100, K_U32, 0, 0),
    N("long_time_period_min", 12, 101, K_U32, 0, 0),
    N("long_time_period_hrs", 12, 102, K_U32, 0, 0),
    /* 13.x */
    N("4byte_signed", 13, 0, K_S32, 0, 0),
    N("pulse_4byte", 13, 1, K_S32, 0, 0),
    N("flow_rate_m3h", 13, 2, K_S32, 0, 0),
    N("active_energy", 13, 10, K_S32, 0, 0),
    N("apparant_energy", 13, 11, K_S32, 0, 0),
    N("reactive_energy", 13, 12, K_S32, 0, 0),
    N("active_energy_kwh", 13, 13, K_S32, 0, 0),
    N("apparant_energy_kvah", 13, 14, K_S32, 0, 0),
    N("reactive_energy_kvarh", 13, 15, K_S32, 0, 0),
    N("active_energy_mwh", 13, 16, K_S32, 0, 0),
    N("long_delta_timesec", 13, 100, K_S32, 0, 0),
    /* 14.x */
    F14("4byte_float", 65535),
    F14("acceleration", 0),
    F14("acceleration_angular", 1),
    F14("activation_energy", 2),
    F14("activity", 3),
    F14("mol", 4),
    F14("amplitude", 5),
    F14("angle_rad", 6),
    F14("angle_deg", 7),
    F14("angular_momentum", 8),
    F14("angular_velocity", 9),
    F14("area", 10),
    F14("capacitance", 11),
    F14("charge_density_surface", 12),
    F14("charge_density_volume", 13),
    F14("compressibility", 14),
    F14("conductance", 15),
    F14("electrical_conductivity", 16),
    F14("density", 17),
    F14("electric_charge", 18),
    F14("electric_current", 19),
    F14("electric_current_density", 20),
    F14("electric_dipole_moment", 21),
    F14("electric_displacement", 22),
    F14("electric_field_strength", 23),
    F14("electric_flux", 24),
    F14("electric_flux_density", 25),
    F14("electric_polarization", 26),
    F14("electric_potential", 27),
    F14("electric_potential_difference", 28),
    F14("electromagnetic_moment", 29),
    F14("electromotive_force", 30),
    F14("energy", 31),
    F14("force", 32),
    F14("frequency", 33),
    F14("angular_frequency", 34),
    F14("heatcapacity", 35),
    F14("heatflowrate", 36),
    F14("heat_quantity", 37),
    F14("impedance", 38),
    F14("length", 39),
    F14("light_quantity", 40),
    F14("luminance", 41),
    F14("luminous_flux", 42),
    F14("luminous_intensity", 43),
    F14("magnetic_field_strength", 44),
    F14("magnetic_flux", 45),
    F14("magnetic_flux_density", 46),
    F14("magnetic_moment", 47),
    F14("magnetic_polarization", 48),
    F14("magnetization", 49),
    F14("magnetomotive_force", 50),
    F14("mass", 51),
    F14("mass_flux", 52),
    F14("momentum", 53),
    F14("phaseanglerad", 54),
    F14("phaseangledeg", 55),
    F14("power", 56),
    F14("powerfactor", 57),
    F14("pressure", 58),
    F14("reactance", 59),
    F14("resistance", 60),
    F14("resistivity", 61),
    F14("self_inductance", 62),
    F14("solid_angle", 63),
    F14("sound_intensity", 64),
    F14("speed", 65),
    F14("stress", 66),
    F14("surface_tension", 67),
    F14("common_temperature", 68),
    F14("absolute_temperature", 69),
    F14("temperature_difference", 70),
    F14("thermal_capacity", 71),
    F14("thermal_conductivity", 72),
    F14("thermoelectric_power", 73),
    F14("time_seconds", 74),
    F14("torque", 75),
    F14("volume", 76),
    F14("volume_flux", 77),
    F14("weight", 78),
    F14("work", 79),
    F14("apparent_power", 80),
    /* 16, 17, 18, 19 */
    N("string", 16, 0, K_STR_ASCII, 0, 0),
    N("latin_1", 16, 1, K_STR_LATIN1, 0, 0),
    N("scene_number", 17, 1, K_SCENE, 1, 64),
    N("scene_control", 18, 1, K_SCENE_CTRL, 0, 0),
    N("datetime", 19, 1, K_DATETIME, 0, 0),
    /* 20.x */
    N("1byte_enum", 20, 0, K_ENUM8, 0, 255),
    {"hvac_mode", 20, 102, K_ENUM8, 0, 4, 0, hvac_mode, 5},
    {"hvac_controller_mode", 20, 105, K_ENUM8, 0, 20, 0, hvac_contr_mode, 21},
    /* 232.600 */
    N("color_rgb", 232, 600, K_RGB, 0, 0),
};
#define N_TABLE (sizeof table / sizeof table[0])

size_t knx_dpt_count(void) {
    return N_TABLE;
}
const knx_dpt *knx_dpt_at(size_t i) {
    return i < N_TABLE ? &table[i] : NULL;
}
const char *knx_dpt_name(const knx_dpt *d) {
    return d->name;
}
void knx_dpt_number(const knx_dpt *d, char *out, size_t cap) {
    if (d->main == 14 && d->sub == 65535)
        snprintf(out, cap, "14");
    else
        snprintf(out, cap, "%u.%03u", (unsigned)d->main, (unsigned)d->sub);
}

/* The generic entry of a main number (the first one listed). */
static const knx_dpt *main_entry(unsigned main) {
    for (size_t i = 0; i < N_TABLE; i++)
        if (table[i].main == main) return &table[i];
    return NULL;
}

const knx_dpt *knx_dpt_find(const char *name) {
    if (!name || !*name) return NULL;
    for (size_t i = 0; i < N_TABLE; i++)
        if (!strcasecmp(table[i].name, name)) return &table[i];
    if (!isdigit((unsigned char)name[0])) return NULL;
    char *end;
    unsigned long main = strtoul(name, &end, 10), sub = 0;
    int has_sub = 0;
    if (*end == '.') {
        if (!isdigit((unsigned char)end[1])) return NULL;
        sub = strtoul(end + 1, &end, 10);
        has_sub = 1;
    }
    if (*end || main > 65535 || sub > 65535) return NULL;
    if (has_sub)
        for (size_t i = 0; i < N_TABLE; i++)
            if (table[i].main == main && table[i].sub == sub && !(main == 14 && sub == 65535))
                return &table[i];
    return main_entry((unsigned)main);
}

/* Levenshtein distance of lower-cased names (both short). */
static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40) return 99;
    size_t row[41];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
            size_t best = prev + cost;
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

const char *knx_dpt_suggest(const char *name) {
    if (!name) return NULL;
    const char *best = NULL;
    size_t bd = 4;
    for (size_t i = 0; i < N_TABLE; i++) {
        size_t d = edit_distance(name, table[i].name);
        if (d < bd) {
            bd = d;
            best = table[i].name;
        }
    }
    return best;
}
