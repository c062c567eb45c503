#!/usr/bin/env python3
"""Where tbgw's CPU goes per message: reads `perf script` output of a `perf record --call-graph dwarf`
of the gateway (bench/run.sh with BENCH_PERF=1) and sorts every sample into one bucket by its call
chain: system calls by kind (kernel samples under read / write / poll / futex / nanosleep /
setsockopt), scheduler and wake-ups, then user code by the innermost gateway function it runs under
(JSON parse, converter, connector dispatch and hand-off, record/storage, packer, publish, the MQTT
client (libmosquitto, or the connector's own in src/proto/mqtt), allocator).

Usage: perf script -i perf.data | bench/perf_breakdown.py [--cpu-seconds S --messages N]
With the CPU seconds of the run and its message count it also prints microseconds per message."""
import argparse
import collections
import re
import sys

KERNEL = [  # (bucket, regex on any kernel frame of the sample), first match wins
    ("scheduler, wake-ups", r"^(schedule|__schedule|finish_task_switch|try_to_wake_up|futex_|__x64_sys_futex|do_futex)"),
    ("syscall: poll", r"^(do_sys_poll|__x64_sys_poll|__x64_sys_ppoll|do_epoll_wait|ep_poll|__x64_sys_epoll)"),
    ("syscall: read", r"^(ksys_read|__x64_sys_read|__x64_sys_recvfrom|__sys_recvfrom|__x64_sys_recvmsg)"),
    ("syscall: write", r"^(ksys_write|__x64_sys_write|__x64_sys_sendto|__sys_sendto|__x64_sys_writev|__x64_sys_sendmsg)"),
    ("syscall: nanosleep", r"^(hrtimer_nanosleep|__x64_sys_clock_nanosleep|__x64_sys_nanosleep)"),
    ("syscall: setsockopt (TCP push)", r"^(__x64_sys_setsockopt|__sys_setsockopt)"),
    ("syscall: other", r"^(do_syscall_64)"),
]
USER = [  # (bucket, regex on a user frame), the innermost frame that matches decides
    ("JSON parse", r"^(tbgw_json_loadb|json_loadb)$"),
    ("converter", r"^(tbgw_json_conv_convert|tbgw_bytes_conv_convert|tbgw_expr_|tbgw_regex_|tbgw_converted_add|tbgw_topic_matches|pcre2_)"),
    ("record/storage (core ingress)", r"^(process_data|store|storage_sink|tbgw_record_encode|mem_append|touch_device|tbgw_devices_get|tbgw_report_filter|tbgw_mgmt_accept|tbgw_gw_drain_ingress|tbgw_converted_free|tbgw_in_free)$"),
    ("packer", r"^(stage_next|tb_codec_pack|collect_msg|tbgw_record_decode|count_by_conn|mem_peek|tbgw_pack_build|staged_clear|msg_vec_free)$"),
    ("publish to the platform", r"^(pump_one|pump|tb_client_publish|commit_done|on_publish|mem_commit|flight_free|tb_client_push|on_poll|update_poll)$"),
    ("connector dispatch, hand-off", r"^(dispatch|on_message|read_burst|batch_add|flush_batch|maybe_flush|h_emit|tbgw_gw_ingress_push|h_stat_add|network_turn|next_due|mq_run|h_dispatch|trace_frame)$"),
]
MQTT_OWN = r"^(mqtt_session_|mqtt_frame_next|mqtt_parse_|mqtt_props_parse|mqtt_enc_|rd_props|read_step|make_room|tcp_connected|tls_step)"
MQTT_OWN_STATIC = r"^(on_publish|on_ack|on_connack|on_suback|handle|drop|fill_window|out_find|out_remove|qos2_)"
LIBS = [("MQTT client library", "libmosquitto"), ("JSON library (unattributed)", "libjansson"),
        ("libuv", "libuv"), ("allocator (unattributed)", None)]


def classify(frames):
    kernel = [s for s, d in frames if d == "[kernel.kallsyms]"]
    user = [(s, d) for s, d in frames if d != "[kernel.kallsyms]"]
    if kernel:
        for bucket, rx in KERNEL:
            r = re.compile(rx)
            if any(r.match(s) for s in kernel):
                return bucket
        return "kernel: interrupts, other"
    in_session = any(s.startswith("mqtt_session_") for s, _ in user)
    for s, d in user:  # innermost first
        if "libmosquitto" in d:  # its packet reading and handling, below the connector's callback
            return "MQTT client library"
        # the connector's own client (src/proto/mqtt): framing, decoding, acknowledgements
        if re.match(MQTT_OWN, s) or (in_session and re.match(MQTT_OWN_STATIC, s)):
            return "MQTT client library"
        for bucket, rx in USER:
            if re.match(rx, s):
                return bucket
    leaf_s, leaf_d = user[0] if user else ("?", "?")
    for bucket, lib in LIBS:
        if lib and lib in leaf_d:
            return bucket
    if re.match(r"^(malloc|free|cfree|calloc|realloc|_int_|__libc_calloc|__libc_malloc|malloc_consolidate|unlink_chunk)", leaf_s):
        return "allocator (unattributed)"
    return "other"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpu-seconds", type=float)
    ap.add_argument("--messages", type=int)
    a = ap.parse_args()
    counts = collections.Counter()
    by_thread = collections.Counter()
    frames, thread = [], None
    head = re.compile(r"^(\S.*?)\s+\d+(/\d+)?\s+[\d.]+:")
    frame = re.compile(r"^\s+[0-9a-f]+\s+(\S+?)(\+0x[0-9a-f]+)?\s+\((.*)\)$")

    def flush():
        if thread is not None and frames:
            counts[classify(frames)] += 1
            by_thread[thread] += 1

    for line in sys.stdin:
        m = head.match(line)
        if m:
            flush()
            thread, frames = m.group(1).strip(), []
            continue
        m = frame.match(line)
        if m:
            dso = m.group(3)
            frames.append((m.group(1), "[kernel.kallsyms]" if "kernel.kallsyms" in dso else dso))
    flush()
    total = sum(counts.values()) or 1
    per_msg = a.cpu_seconds * 1e6 / a.messages if a.cpu_seconds and a.messages else None
    print("| bucket | share of samples |%s" % (" µs per message |" if per_msg else ""))
    print("|---|---|%s" % ("---|" if per_msg else ""))
    for b, n in counts.most_common():
        extra = " %.2f |" % (per_msg * n / total) if per_msg else ""
        print("| %s | %.1f %% |%s" % (b, 100.0 * n / total, extra))
    print()
    print("threads: " + ", ".join("%s %.0f %%" % (t, 100.0 * n / total) for t, n in by_thread.most_common()))
    print("samples: %d" % total)


if __name__ == "__main__":
    main()
