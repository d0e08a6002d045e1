/*
 * rdkafka_bench: native librdkafka load generator for scripts/bench.ts.
 *
 * Modes (first argument), each printing exactly one JSON line on stdout:
 *   version       The librdkafka version linked in.
 *   create-topic  CreateTopics through the admin API; falls back to broker auto-creation
 *                 (a metadata request for the topic) when CreateTopics fails, then waits until
 *                 every partition has a leader.
 *   delete-topic  DeleteTopics through the admin API (bench.ts cleans up its fresh topics).
 *   produce       Sends records (no key, fixed-size pseudo-random payload) at max rate or at a
 *                 target rate; measures per-record latency from rd_kafka_produce() to the
 *                 delivery report (CLOCK_MONOTONIC send time kept in a preallocated array and
 *                 found through msg_opaque).
 *   consume       Assigns every partition from the beginning (no group, no commits) and reads
 *                 until the expected record count, or until every partition hits EOF when no
 *                 count is given, or until the deadline.
 *
 * Build: gcc -O2 -o .tools/bench/rdkafka_bench scripts/bench/rdkafka_bench.c -lrdkafka
 * MB is 2^20 bytes, as in Kafka's own perf tools. Exit status: 0 ok, 1 failed, 2 bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Limits: every array, queue and loop below is bounded by one of these. */
#define RECORDS_MAX 20000000L        /* preallocated latency slots (8 bytes each) */
#define RECORD_SIZE_MAX (1 << 20)    /* largest payload we generate */
#define DURATION_S_MAX 600.0         /* no phase may run longer than this */
#define FLUSH_TIMEOUT_MS 60000       /* wait for outstanding deliveries after the send loop */
#define INTERRUPT_FLUSH_TIMEOUT_MS 2000 /* the same after SIGINT/SIGTERM, once purged */
#define QUEUE_MAX_MESSAGES "100000"  /* librdkafka producer queue bound (records) */
#define QUEUE_MAX_KBYTES "65536"     /* librdkafka producer queue bound (64 MiB) */
#define ADMIN_TIMEOUT_MS 30000       /* CreateTopics request and topic readiness wait */
#define ERROR_TEXT_MAX 512
#define MIB (1024.0 * 1024.0)

typedef struct {
  const char *mode;
  const char *bootstrap;
  const char *topic;
  long record_size;
  long records;
  double duration_s;
  const char *acks;
  const char *linger_ms;
  const char *batch_size;
  const char *compression;
  double rate;
  int partitions;
  int replication_factor;
  double timeout_s;
  int verbose;
} Options;

static volatile sig_atomic_t g_stop = 0;

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ns(int64_t ns) {
  if (ns <= 0) return;
  struct timespec ts = {.tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR && !g_stop) {
  }
}

/* Writes s as a JSON string literal (with quotes). */
static void json_string(FILE *out, const char *s) {
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    if (*p == '"' || *p == '\\') {
      fputc('\\', out);
      fputc(*p, out);
    } else if (*p < 0x20) {
      fprintf(out, "\\u%04x", *p);
    } else {
      fputc(*p, out);
    }
  }
  fputc('"', out);
}

static void fail_json(const Options *o, const char *error) {
  printf("{\"mode\":");
  json_string(stdout, o->mode);
  printf(",\"ok\":false,\"error\":");
  json_string(stdout, error);
  printf("}\n");
  fflush(stdout);
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value) {
  char err[ERROR_TEXT_MAX];
  if (value == NULL || value[0] == '\0') return 0;
  if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
    fprintf(stderr, "rdkafka_bench: cannot set \"%s\"=\"%s\": %s\n", key, value, err);
    return -1;
  }
  return 0;
}

static rd_kafka_conf_t *base_conf(const Options *o) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (conf_set(conf, "bootstrap.servers", o->bootstrap) ||
      conf_set(conf, "client.id", "rdkafka_bench") ||
      conf_set(conf, "log_level", o->verbose ? "7" : "4")) {
    rd_kafka_conf_destroy(conf);
    return NULL;
  }
  return conf;
}

static double seconds_between(int64_t start_ns, int64_t end_ns) {
  return (double)(end_ns - start_ns) / 1e9;
}

/* ------------------------------------------------------------------ create-topic */

/* Waits until metadata for the topic has partitions that all have a leader.
 * Returns the partition count, or -1 on timeout (err receives the last error). */
static int wait_topic_ready(rd_kafka_t *rk, const char *topic, int64_t deadline_ns, char *err,
                            size_t err_size) {
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  int result = -1;
  snprintf(err, err_size, "Topic metadata not available");
  while (!g_stop && now_ns() < deadline_ns) {
    const struct rd_kafka_metadata *md = NULL;
    int64_t left_ms = (deadline_ns - now_ns()) / 1000000LL;
    int wait_ms = left_ms < 100 ? 100 : left_ms > 5000 ? 5000 : (int)left_ms;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, wait_ms);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1) {
      const struct rd_kafka_metadata_topic *t = &md->topics[0];
      int ready = t->err == RD_KAFKA_RESP_ERR_NO_ERROR && t->partition_cnt > 0;
      for (int i = 0; ready && i < t->partition_cnt; i++) {
        if (t->partitions[i].leader < 0 || t->partitions[i].err) ready = 0;
      }
      if (ready) {
        result = t->partition_cnt;
      } else {
        snprintf(err, err_size, "Topic not ready: %s", rd_kafka_err2str(t->err));
      }
    } else if (e) {
      snprintf(err, err_size, "Metadata request failed: %s", rd_kafka_err2str(e));
    }
    if (md) rd_kafka_metadata_destroy(md);
    if (result > 0) break;
    sleep_ns(200 * 1000000LL);
  }
  rd_kafka_topic_destroy(rkt);
  return result;
}

static int run_create_topic(const Options *o) {
  char err[ERROR_TEXT_MAX];
  rd_kafka_conf_t *conf = base_conf(o);
  if (!conf) return 2;
  /* A producer handle: its metadata requests may auto-create the topic (the fallback). */
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (!rk) {
    fail_json(o, err);
    return 1;
  }
  int64_t start = now_ns();
  int64_t deadline = start + (int64_t)(o->timeout_s * 1e9);
  const char *how = "create_topics";
  char create_error[ERROR_TEXT_MAX] = "";

  rd_kafka_NewTopic_t *nt =
      rd_kafka_NewTopic_new(o->topic, o->partitions, o->replication_factor, err, sizeof(err));
  if (!nt) {
    fail_json(o, err);
    rd_kafka_destroy(rk);
    return 2;
  }
  /* Half the budget for CreateTopics, the rest for the readiness wait (and the fallback). */
  int admin_ms = (int)(o->timeout_s * 500);
  if (admin_ms > ADMIN_TIMEOUT_MS) admin_ms = ADMIN_TIMEOUT_MS;
  rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_request_timeout(opts, admin_ms, err, sizeof(err));
  rd_kafka_AdminOptions_set_operation_timeout(opts, admin_ms, err, sizeof(err));
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, admin_ms + 1000);
  if (!ev) {
    snprintf(create_error, sizeof(create_error), "CreateTopics timed out");
  } else if (rd_kafka_event_error(ev)) {
    snprintf(create_error, sizeof(create_error), "CreateTopics failed: %s",
             rd_kafka_event_error_string(ev));
  } else {
    size_t n = 0;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; i++) {
      rd_kafka_resp_err_t te = rd_kafka_topic_result_error(res[i]);
      if (te == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        how = "already_exists";
      } else if (te) {
        const char *msg = rd_kafka_topic_result_error_string(res[i]);
        snprintf(create_error, sizeof(create_error), "CreateTopics failed: %s: %s",
                 rd_kafka_err2name(te), msg ? msg : "");
      }
    }
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_AdminOptions_destroy(opts);
  rd_kafka_NewTopic_destroy(nt);
  if (create_error[0]) {
    how = "auto_create";
    fprintf(stderr, "rdkafka_bench: %s; falling back to auto-creation\n", create_error);
  }

  int partitions = wait_topic_ready(rk, o->topic, deadline, err, sizeof(err));
  double secs = seconds_between(start, now_ns());
  rd_kafka_destroy(rk);
  if (partitions < 0) {
    char both[2 * ERROR_TEXT_MAX + 8];
    snprintf(both, sizeof(both), "%s%s%s", create_error, create_error[0] ? "; " : "", err);
    fail_json(o, both);
    return 1;
  }
  printf("{\"mode\":\"create-topic\",\"ok\":true,\"topic\":");
  json_string(stdout, o->topic);
  printf(",\"how\":\"%s\",\"partitions\":%d,\"seconds\":%.3f", how, partitions, secs);
  if (create_error[0]) {
    printf(",\"create_error\":");
    json_string(stdout, create_error);
  }
  printf("}\n");
  return 0;
}

/* ------------------------------------------------------------------ delete-topic */

static int run_delete_topic(const Options *o) {
  char err[ERROR_TEXT_MAX];
  rd_kafka_conf_t *conf = base_conf(o);
  if (!conf) return 2;
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (!rk) {
    fail_json(o, err);
    return 1;
  }
  int64_t start = now_ns();
  char error[ERROR_TEXT_MAX] = "";
  rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(o->topic);
  rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS);
  rd_kafka_AdminOptions_set_request_timeout(opts, ADMIN_TIMEOUT_MS, err, sizeof(err));
  rd_kafka_AdminOptions_set_operation_timeout(opts, ADMIN_TIMEOUT_MS, err, sizeof(err));
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_DeleteTopics(rk, &dt, 1, opts, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, ADMIN_TIMEOUT_MS + 5000);
  if (!ev) {
    snprintf(error, sizeof(error), "DeleteTopics timed out");
  } else if (rd_kafka_event_error(ev)) {
    snprintf(error, sizeof(error), "DeleteTopics failed: %s", rd_kafka_event_error_string(ev));
  } else {
    size_t n = 0;
    const rd_kafka_topic_result_t **res =
        rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
    for (size_t i = 0; i < n; i++) {
      rd_kafka_resp_err_t te = rd_kafka_topic_result_error(res[i]);
      if (te) {
        snprintf(error, sizeof(error), "DeleteTopics failed: %s", rd_kafka_err2name(te));
      }
    }
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_AdminOptions_destroy(opts);
  rd_kafka_DeleteTopic_destroy(dt);
  rd_kafka_destroy(rk);
  if (error[0]) {
    fail_json(o, error);
    return 1;
  }
  printf("{\"mode\":\"delete-topic\",\"ok\":true,\"topic\":");
  json_string(stdout, o->topic);
  printf(",\"seconds\":%.3f}\n", seconds_between(start, now_ns()));
  return 0;
}

/* ------------------------------------------------------------------ produce */

#define STATUS_PENDING 0
#define STATUS_OK 1
#define STATUS_FAILED 2

typedef struct {
  int64_t *slots;  /* send time in ns; replaced by latency in ns on success */
  uint8_t *status; /* per record: STATUS_PENDING, STATUS_OK or STATUS_FAILED */
  long delivered;
  long errors;
  int64_t last_delivery_ns;
  char first_error[ERROR_TEXT_MAX];
} ProduceState;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  ProduceState *st = opaque;
  long i = (long)(intptr_t)m->_private;
  int64_t t = now_ns();
  st->last_delivery_ns = t;
  if (m->err) {
    st->errors++;
    st->status[i] = STATUS_FAILED;
    if (!st->first_error[0]) {
      snprintf(st->first_error, sizeof(st->first_error), "%s: %s", rd_kafka_err2name(m->err),
               rd_kafka_err2str(m->err));
    }
  } else {
    st->delivered++;
    st->status[i] = STATUS_OK;
    st->slots[i] = t - st->slots[i];
  }
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array, in ms. */
static double pct_ms(const int64_t *sorted, long n, double p) {
  if (n <= 0) return 0;
  long rank = (long)(p / 100.0 * (double)n + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return (double)sorted[rank - 1] / 1e6;
}

static void conf_echo(FILE *out, rd_kafka_conf_t *conf, const char *key, int comma) {
  char value[256];
  size_t size = sizeof(value);
  if (rd_kafka_conf_get(conf, key, value, &size) != RD_KAFKA_CONF_OK) value[0] = '\0';
  if (comma) fputc(',', out);
  json_string(out, key);
  fputc(':', out);
  json_string(out, value);
}

static int run_produce(const Options *o) {
  char err[ERROR_TEXT_MAX];
  if (o->records <= 0 || o->records > RECORDS_MAX) {
    fprintf(stderr, "rdkafka_bench: --records must be 1..%ld, got %ld\n", RECORDS_MAX, o->records);
    return 2;
  }
  if (o->record_size < 0 || o->record_size > RECORD_SIZE_MAX) {
    fprintf(stderr, "rdkafka_bench: --record-size must be 0..%d\n", RECORD_SIZE_MAX);
    return 2;
  }
  ProduceState st = {0};
  st.slots = calloc((size_t)o->records, sizeof(int64_t));
  st.status = calloc((size_t)o->records, 1);
  char *payload = malloc((size_t)o->record_size + 1);
  if (!st.slots || !st.status || !payload) {
    fail_json(o, "Out of memory for the latency array; lower --records");
    return 1;
  }
  /* Pseudo-random bytes so compression has realistic (poor) input, not zeros. */
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  for (long i = 0; i < o->record_size; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    payload[i] = (char)('a' + (x % 26));
  }

  rd_kafka_conf_t *conf = base_conf(o);
  if (!conf) return 2;
  if (conf_set(conf, "acks", o->acks) || conf_set(conf, "linger.ms", o->linger_ms) ||
      conf_set(conf, "batch.size", o->batch_size) ||
      conf_set(conf, "compression.type", o->compression) ||
      conf_set(conf, "enable.idempotence", "false") ||
      conf_set(conf, "queue.buffering.max.messages", QUEUE_MAX_MESSAGES) ||
      conf_set(conf, "queue.buffering.max.kbytes", QUEUE_MAX_KBYTES) ||
      conf_set(conf, "message.timeout.ms", "30000")) {
    rd_kafka_conf_destroy(conf);
    return 2;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_opaque(conf, &st);
  /* Kept for the JSON echo of the effective settings; rd_kafka_new() takes ownership of conf. */
  rd_kafka_conf_t *echo = rd_kafka_conf_dup(conf);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (!rk) {
    fail_json(o, err);
    return 1;
  }
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);

  int64_t start = now_ns();
  int64_t send_deadline = start + (int64_t)(o->duration_s * 1e9);
  int64_t interval_ns = o->rate > 0 ? (int64_t)(1e9 / o->rate) : 0;
  long sent = 0, queue_full = 0;
  while (sent < o->records && !g_stop) {
    int64_t t = now_ns();
    if (t >= send_deadline) break;
    if (interval_ns > 0) {
      int64_t due = start + sent * interval_ns;
      if (due > t) {
        rd_kafka_poll(rk, 0);
        sleep_ns((due < send_deadline ? due : send_deadline) - t);
        continue;
      }
    }
    st.slots[sent] = now_ns();
    if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, 0, payload, (size_t)o->record_size, NULL, 0,
                         (void *)(intptr_t)sent) == -1) {
      rd_kafka_resp_err_t e = rd_kafka_last_error();
      if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        queue_full++;
        rd_kafka_poll(rk, 1);
        continue;
      }
      snprintf(err, sizeof(err), "Produce failed: %s", rd_kafka_err2str(e));
      fail_json(o, err);
      break;
    }
    sent++;
    if ((sent & 0xff) == 0) rd_kafka_poll(rk, 0);
  }
  int64_t sent_end = now_ns();
  /* Interrupted: drop what is still queued instead of waiting for it. */
  if (g_stop) rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_resp_err_t fe =
      rd_kafka_flush(rk, g_stop ? INTERRUPT_FLUSH_TIMEOUT_MS : FLUSH_TIMEOUT_MS);
  long outstanding = rd_kafka_outq_len(rk);
  int64_t end = st.last_delivery_ns > 0 ? st.last_delivery_ns : now_ns();
  double secs = seconds_between(start, end);

  /* Compact successful latencies to the front and sort them. */
  long n = 0;
  for (long i = 0; i < sent; i++) {
    if (st.status[i] == STATUS_OK) st.slots[n++] = st.slots[i];
  }
  qsort(st.slots, (size_t)n, sizeof(int64_t), cmp_i64);
  double bytes = (double)st.delivered * (double)o->record_size;

  printf("{\"mode\":\"produce\",\"ok\":%s,\"topic\":", st.errors == 0 && !fe ? "true" : "false");
  json_string(stdout, o->topic);
  printf(",\"sent\":%ld,\"records\":%ld,\"bytes\":%.0f,\"seconds\":%.3f,\"send_seconds\":%.3f,"
         "\"mb_per_s\":%.3f,\"records_per_s\":%.1f,\"target_rate\":%.1f,"
         "\"latency_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"p99_9\":%.3f,\"max\":%.3f},"
         "\"errors\":%ld,\"undelivered\":%ld,\"queue_full_retries\":%ld,\"config\":{",
         sent, st.delivered, bytes, secs, seconds_between(start, sent_end),
         secs > 0 ? bytes / MIB / secs : 0, secs > 0 ? (double)st.delivered / secs : 0, o->rate,
         pct_ms(st.slots, n, 50), pct_ms(st.slots, n, 99), pct_ms(st.slots, n, 99.9),
         n > 0 ? (double)st.slots[n - 1] / 1e6 : 0, st.errors, outstanding, queue_full);
  conf_echo(stdout, echo, "acks", 0);
  conf_echo(stdout, echo, "linger.ms", 1);
  conf_echo(stdout, echo, "batch.size", 1);
  conf_echo(stdout, echo, "compression.type", 1);
  conf_echo(stdout, echo, "enable.idempotence", 1);
  printf(",\"record.size\":\"%ld\"}", o->record_size);
  if (st.first_error[0]) {
    printf(",\"first_error\":");
    json_string(stdout, st.first_error);
  }
  printf("}\n");
  fflush(stdout);

  rd_kafka_conf_destroy(echo);
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
  free(st.slots);
  free(st.status);
  free(payload);
  return st.errors == 0 && !fe && outstanding == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------ consume */

static int run_consume(const Options *o) {
  char err[ERROR_TEXT_MAX];
  rd_kafka_conf_t *conf = base_conf(o);
  if (!conf) return 2;
  /* group.id is only a label here: partitions are assigned manually and nothing is committed. */
  if (conf_set(conf, "group.id", "rdkafka_bench") ||
      conf_set(conf, "enable.auto.commit", "false") ||
      conf_set(conf, "enable.auto.offset.store", "false") ||
      conf_set(conf, "enable.partition.eof", "true") ||
      conf_set(conf, "auto.offset.reset", "earliest")) {
    rd_kafka_conf_destroy(conf);
    return 2;
  }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  if (!rk) {
    fail_json(o, err);
    return 1;
  }
  int64_t start = now_ns();
  int64_t deadline = start + (int64_t)(o->timeout_s * 1e9);
  int partitions = wait_topic_ready(rk, o->topic, deadline, err, sizeof(err));
  if (partitions < 0) {
    fail_json(o, err);
    rd_kafka_destroy(rk);
    return 1;
  }
  rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; p++) {
    rd_kafka_topic_partition_list_add(parts, o->topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_resp_err_t ae = rd_kafka_assign(rk, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  if (ae) {
    snprintf(err, sizeof(err), "Assign failed: %s", rd_kafka_err2str(ae));
    fail_json(o, err);
    rd_kafka_destroy(rk);
    return 1;
  }

  int64_t assigned = now_ns();
  int64_t first = 0, last = 0;
  long records = 0, errors = 0, eof_partitions = 0;
  double bytes = 0;
  char first_error[ERROR_TEXT_MAX] = "";
  char *at_eof = calloc((size_t)partitions, 1);
  while (!g_stop && now_ns() < deadline) {
    if (o->records > 0 && records >= o->records) break;
    if (o->records <= 0 && eof_partitions >= partitions) break;
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (m->partition >= 0 && m->partition < partitions && !at_eof[m->partition]) {
        at_eof[m->partition] = 1;
        eof_partitions++;
      }
    } else if (m->err) {
      errors++;
      if (!first_error[0]) {
        snprintf(first_error, sizeof(first_error), "%s: %s", rd_kafka_err2name(m->err),
                 rd_kafka_message_errstr(m));
      }
    } else {
      last = now_ns();
      if (!first) first = last;
      records++;
      bytes += (double)m->len + (m->key ? (double)m->key_len : 0);
      if (m->partition >= 0 && m->partition < partitions && at_eof[m->partition]) {
        at_eof[m->partition] = 0;
        eof_partitions--;
      }
    }
    rd_kafka_message_destroy(m);
  }
  free(at_eof);
  if (!last) last = now_ns();
  double secs = seconds_between(assigned, last);
  int ok = o->records > 0 ? records >= o->records : errors == 0;
  printf("{\"mode\":\"consume\",\"ok\":%s,\"topic\":", ok ? "true" : "false");
  json_string(stdout, o->topic);
  printf(",\"partitions\":%d,\"records\":%ld,\"expected\":%ld,\"bytes\":%.0f,\"seconds\":%.3f,"
         "\"mb_per_s\":%.3f,\"records_per_s\":%.1f,\"first_record_ms\":%.1f,\"errors\":%ld",
         partitions, records, o->records, bytes, secs, secs > 0 ? bytes / MIB / secs : 0,
         secs > 0 ? (double)records / secs : 0,
         first ? (double)(first - assigned) / 1e6 : -1.0, errors);
  if (first_error[0]) {
    printf(",\"first_error\":");
    json_string(stdout, first_error);
  }
  printf("}\n");
  fflush(stdout);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return ok ? 0 : 1;
}

/* ------------------------------------------------------------------ main */

static void usage(void) {
  fprintf(stderr,
          "Usage: rdkafka_bench version|create-topic|delete-topic|produce|consume\n"
          "  --bootstrap HOST:PORT --topic T\n"
          "  [--record-size 1024] [--records N] [--duration-s 60] [--acks all]\n"
          "  [--linger-ms MS] [--batch-size BYTES] [--compression none] [--rate REC_PER_S]\n"
          "  [--partitions 8] [--replication-factor 1] [--timeout-s 60] [--verbose]\n");
}

int main(int argc, char **argv) {
  Options o = {.record_size = 1024,
               .records = 0,
               .duration_s = 60,
               .acks = "all",
               .compression = "none",
               .partitions = 8,
               .replication_factor = 1,
               .timeout_s = 60};
  if (argc < 2) {
    usage();
    return 2;
  }
  o.mode = argv[1];
  if (strcmp(o.mode, "version") == 0) {
    printf("{\"mode\":\"version\",\"ok\":true,\"librdkafka\":");
    json_string(stdout, rd_kafka_version_str());
    printf("}\n");
    return 0;
  }
  static struct option long_opts[] = {{"bootstrap", required_argument, 0, 'b'},
                                      {"topic", required_argument, 0, 't'},
                                      {"record-size", required_argument, 0, 's'},
                                      {"records", required_argument, 0, 'n'},
                                      {"duration-s", required_argument, 0, 'd'},
                                      {"acks", required_argument, 0, 'a'},
                                      {"linger-ms", required_argument, 0, 'l'},
                                      {"batch-size", required_argument, 0, 'B'},
                                      {"compression", required_argument, 0, 'c'},
                                      {"rate", required_argument, 0, 'r'},
                                      {"partitions", required_argument, 0, 'p'},
                                      {"replication-factor", required_argument, 0, 'R'},
                                      {"timeout-s", required_argument, 0, 'T'},
                                      {"verbose", no_argument, 0, 'v'},
                                      {0, 0, 0, 0}};
  optind = 2;
  int c;
  while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
    switch (c) {
      case 'b': o.bootstrap = optarg; break;
      case 't': o.topic = optarg; break;
      case 's': o.record_size = atol(optarg); break;
      case 'n': o.records = atol(optarg); break;
      case 'd': o.duration_s = atof(optarg); break;
      case 'a': o.acks = optarg; break;
      case 'l': o.linger_ms = optarg; break;
      case 'B': o.batch_size = optarg; break;
      case 'c': o.compression = optarg; break;
      case 'r': o.rate = atof(optarg); break;
      case 'p': o.partitions = atoi(optarg); break;
      case 'R': o.replication_factor = atoi(optarg); break;
      case 'T': o.timeout_s = atof(optarg); break;
      case 'v': o.verbose = 1; break;
      default: usage(); return 2;
    }
  }
  if (!o.bootstrap || !o.topic) {
    usage();
    return 2;
  }
  if (o.duration_s <= 0 || o.duration_s > DURATION_S_MAX) o.duration_s = DURATION_S_MAX;
  if (o.timeout_s <= 0 || o.timeout_s > DURATION_S_MAX) o.timeout_s = DURATION_S_MAX;
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  if (strcmp(o.mode, "create-topic") == 0) return run_create_topic(&o);
  if (strcmp(o.mode, "delete-topic") == 0) return run_delete_topic(&o);
  if (strcmp(o.mode, "produce") == 0) return run_produce(&o);
  if (strcmp(o.mode, "consume") == 0) return run_consume(&o);
  usage();
  return 2;
}
