/**
 * A lost Produce response (issue 7): a proxy between a real idempotent producer and the broker
 * swallows one successful Produce response and cuts that connection, the way a network failure
 * after the broker stored the batch does. The client resends the same batch (same producer id,
 * epoch and sequence); the broker must recognise it as a duplicate and answer with the ORIGINAL
 * base offset without storing it again: the topic holds every record exactly once.
 */
import assert from "node:assert/strict";
import { startBroker } from "./broker_process.ts";
import { KafkaProxy, type ProducedBatch } from "./idempotent_proxy.ts";
import {
  checkAcks,
  createTopic,
  FRANZ_GO_PRODUCER,
  JAVA_PRODUCER,
  javaProducer,
  LIBRDKAFKA_PRODUCER,
  PRODUCE_DEADLINE_S,
  type ProducerProgram,
  scrapeCounter,
  startProducer,
  verifyTopic,
} from "./idempotent_support.ts";

const PARTITIONS = 2;
const RECORDS = 20_000;
/** Successful Produce responses forwarded before the one that is lost. */
const DROP_AFTER_RESPONSES = 1;
const KILL_GRACE_MS = 30_000;

function sameBatch(a: ProducedBatch, b: ProducedBatch): boolean {
  return a.topic === b.topic && a.partition === b.partition && a.producerId === b.producerId &&
    a.producerEpoch === b.producerEpoch && a.baseSequence === b.baseSequence &&
    a.records === b.records;
}

async function dropOneResponse(producer: ProducerProgram): Promise<void> {
  await producer.prepare();
  const proxy = new KafkaProxy("127.0.0.1:1");
  const topic = `retry-${producer.name.split(" ")[0]}-${Date.now()}`;
  let broker: Awaited<ReturnType<typeof startBroker>> | null = null;
  try {
    broker = await startBroker({ args: ["--advertised-listener", proxy.address] });
    proxy.upstream = broker.bootstrap;
    await createTopic(proxy.address, topic, PARTITIONS);
    proxy.dropProduceResponse(DROP_AFTER_RESPONSES);
    const run = startProducer(producer.command(proxy.address, topic, PARTITIONS, RECORDS));
    const context = () =>
      `--- producer stdout (non-ACK lines) ---\n${run.stdoutTail()}\n` +
      `--- producer stderr ---\n${run.stderr()}\n--- broker output ---\n${broker?.logs()}`;
    const exit = await run.finished(PRODUCE_DEADLINE_S * 1000 + KILL_GRACE_MS);
    assert.equal(exit.code, 0, `${producer.name} failed.\n${context()}`);
    assert.equal(proxy.droppedResponses, 1, "The proxy lost exactly one Produce response");
    assert.deepEqual(checkAcks(run.acks, RECORDS), [], context());

    // The lost batch came again and got its original offset back.
    const dropped = proxy.produced.filter((b) => b.dropped);
    assert.ok(dropped.length > 0 && dropped.every((b) => b.producerId >= 0), "idempotent batches");
    for (const lost of dropped) {
      assert.equal(lost.errorCode, 0, "the lost response was a success");
      const retries = proxy.produced.filter((b) => !b.dropped && sameBatch(b, lost));
      assert.ok(retries.length > 0, `No retry of ${JSON.stringify(lost)}.\n${context()}`);
      for (const retry of retries) {
        assert.equal(retry.errorCode, 0, `Retry refused: ${JSON.stringify(retry)}`);
        assert.equal(retry.baseOffset, lost.baseOffset, "the retry got the original base offset");
      }
    }
    const retried = await scrapeCounter(
      broker.httpAddr,
      "kafscale_produce_duplicate_batches_total",
    );
    assert.ok(retried >= dropped.length, `Duplicates answered: ${retried}`);

    const verified = await verifyTopic(proxy.address, topic, PARTITIONS, run.acks);
    console.log(
      `${producer.name}: lost the response for ${dropped.length} batch(es) at offset(s) ` +
        `${dropped.map((b) => `${b.partition}:${b.baseOffset}`).join(", ")}; ${retried} retried ` +
        `batches answered as duplicates; ${verified.records} records read, ` +
        `${verified.duplicates} duplicates`,
    );
    assert.equal(verified.duplicates, 0, `Duplicates in the topic.\n${verified.text}`);
    assert.equal(verified.records, RECORDS, `Gaps or extra records.\n${verified.text}`);
    assert.ok(verified.ok, verified.text);
    assert.equal(await broker.stop(), 0, `Broker did not stop cleanly.\n${broker.logs()}`);
  } finally {
    await proxy.close();
    await broker?.cleanup();
  }
}

Deno.test("lost produce response: librdkafka's retry is a detected duplicate", () =>
  dropOneResponse(LIBRDKAFKA_PRODUCER));

Deno.test("lost produce response: Java's retry is a detected duplicate", () =>
  dropOneResponse(JAVA_PRODUCER));

Deno.test("lost produce response: Java 4.x's retry is a detected duplicate", () =>
  dropOneResponse(javaProducer("4.1.0")));

Deno.test("lost produce response: franz-go's retry is a detected duplicate", () =>
  dropOneResponse(FRANZ_GO_PRODUCER));
