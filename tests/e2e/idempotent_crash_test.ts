/**
 * Idempotent producers across a broker crash (issue 7): a real producer with its default
 * idempotence writes RECORDS records; once it has KILL_AFTER_ACKS acknowledgements the broker is
 * SIGKILLed and restarted on the same data dir, and the same producer process carries on,
 * retrying what was in flight. Just before the kill a proxy between producer and broker starts
 * losing Produce responses, so the dying broker surely stored batches the producer never heard
 * about. Batches the dead broker had stored but not acknowledged come
 * back as retries, and the restarted broker must answer them from the producer state it rebuilt
 * from the log: in the consumed topic every record is present exactly once, at the offset it
 * was acknowledged at, and in each partition in the order it was sent.
 *
 * Producers: Java kafka-clients 3.9.1 (defaults), franz-go (defaults), librdkafka via
 * confluent-kafka with enable.idempotence=true.
 */
import assert from "node:assert/strict";
import { startBroker } from "./broker_process.ts";
import { KafkaProxy } from "./idempotent_proxy.ts";
import {
  checkAcks,
  createTopic,
  FRANZ_GO_PRODUCER,
  JAVA_PRODUCER,
  LIBRDKAFKA_PRODUCER,
  PRODUCE_DEADLINE_S,
  type ProducerProgram,
  scrapeCounter,
  startProducer,
  verifyTopic,
  waitFor,
} from "./idempotent_support.ts";

const PARTITIONS = 4;
const RECORDS = 100_000;
/**
 * Records acknowledged before the proxy starts holding Produce responses back and the broker is
 * killed: counted in the proxy, so the crash lands mid-stream however a client batches.
 */
const RECORDS_BEFORE_CRASH = 20_000;
/** How long the producer may take to get there. */
const HOLD_DEADLINE_MS = 60_000;
const KILL_GRACE_MS = 30_000;

async function crashMidStream(producer: ProducerProgram): Promise<void> {
  await producer.prepare();
  // Clients talk to the proxy (the broker advertises it), so the restarted broker may listen
  // anywhere, and the proxy can lose the responses of batches the dying broker had stored.
  const proxy = new KafkaProxy("127.0.0.1:1");
  const advertise = ["--advertised-listener", proxy.address];
  const topic = `idem-${producer.name.split(" ")[0]}-${Date.now()}`;
  let first: Awaited<ReturnType<typeof startBroker>> | null = null;
  let second: Awaited<ReturnType<typeof startBroker>> | null = null;
  try {
    first = await startBroker({ args: advertise });
    proxy.upstream = first.bootstrap;
    await createTopic(proxy.address, topic, PARTITIONS);
    // The broker keeps storing batches whose responses never reach the producer; then it dies.
    proxy.holdProduceResponses(RECORDS_BEFORE_CRASH);
    const run = startProducer(producer.command(proxy.address, topic, PARTITIONS, RECORDS));
    const context = () =>
      `--- producer stdout (non-ACK lines) ---\n${run.stdoutTail()}\n` +
      `--- producer stderr ---\n${run.stderr()}\n` +
      `--- broker output (after restart) ---\n${second?.logs() ?? "(not restarted)"}`;
    const held = await waitFor(() => proxy.held > 0, HOLD_DEADLINE_MS, run.exited);
    await first.kill();
    proxy.dropHeldAndDisconnect();
    const acksAtKill = run.acks.length;
    assert.ok(held, `No Produce response was held back before the kill.\n${context()}`);
    second = await startBroker({ dataDir: first.dataDir, args: advertise });
    proxy.upstream = second.bootstrap;
    const exit = await run.finished(PRODUCE_DEADLINE_S * 1000 + KILL_GRACE_MS);
    assert.ok(acksAtKill < RECORDS, `${acksAtKill} acks at the kill`);
    assert.equal(exit.code, 0, `${producer.name} failed after the restart.\n${context()}`);
    assert.deepEqual(checkAcks(run.acks, RECORDS), [], context());

    const verified = await verifyTopic(proxy.address, topic, PARTITIONS, run.acks);
    const retried = await scrapeCounter(
      second.httpAddr,
      "kafscale_produce_duplicate_batches_total",
    );
    const refused = await scrapeCounter(second.httpAddr, "kafscale_produce_sequence_errors_total");
    console.log(
      `${producer.name}: ${acksAtKill} acks at the kill, ${proxy.droppedResponses} Produce ` +
        `responses lost; after the restart ${retried} retried batches answered as duplicates, ` +
        `${refused} refused for their sequence; ${verified.records} records read, ` +
        `${verified.duplicates} duplicates, ${verified.lost} lost`,
    );
    const verifyContext = `${verified.text}\n${context()}`;
    assert.equal(verified.duplicates, 0, `Duplicates in the topic.\n${verifyContext}`);
    assert.equal(verified.lost, 0, `Acknowledged records missing.\n${verifyContext}`);
    assert.equal(verified.records, RECORDS, `Gaps or extra records.\n${verifyContext}`);
    assert.ok(verified.ok, verifyContext);
    // The lost responses were for stored batches: their retries must have been recognised.
    assert.ok(retried >= 1, `No retried batch was answered as a duplicate.\n${context()}`);
    assert.equal(await second.stop(), 0, `Broker did not stop cleanly.\n${second.logs()}`);
  } finally {
    await proxy.close();
    await second?.cleanup();
    await first?.cleanup();
  }
}

Deno.test("idempotent Java producer (defaults): no duplicates or gaps across a SIGKILL", () =>
  crashMidStream(JAVA_PRODUCER));

Deno.test("idempotent franz-go producer (defaults): no duplicates or gaps across a SIGKILL", () =>
  crashMidStream(FRANZ_GO_PRODUCER));

Deno.test("idempotent librdkafka producer: no duplicates or gaps across a SIGKILL", () =>
  crashMidStream(LIBRDKAFKA_PRODUCER));
