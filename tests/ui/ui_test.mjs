// Headless-browser test of the coordinator's web UI, run by the GoogleTest
// WebUi.ShowsTheRunningClusterAndTakesASavepoint (tests/integration/web_ui_test.cc)
// against a cluster it started:
//
//   node tests/ui/ui_test.mjs <url> --screenshot <png> [--workers N] [--partitions N]
//
// Drives Debian's Chromium (/usr/bin/chromium) with playwright-core, loaded
// from $SLIPSTREAM_UI_TEST_MODULES/node_modules (scripts/setup.sh
// --with-ui-test installs it there from tests/ui/package-lock.json; no
// browser is downloaded). It asserts
// on what the page shows, the way a person would read it: the job RUNNING,
// the workers, the key-group map, throughput, watermark and its lag, Kafka lag
// per partition, invalid and late counters, Redis write latency, checkpoint
// counts and history; then clicks "Trigger savepoint" and checks that the path
// the page shows exists with a _metadata file. Always writes the screenshot
// (also when an assertion fails, to show what was wrong). Exit status 0 when
// everything holds, 1 with one line per failed check otherwise.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const USAGE = "usage: node ui_test.mjs <url> --screenshot <png> [--workers N] [--partitions N]";
const args = process.argv.slice(2);
const url = args[0];
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const screenshot = option("--screenshot", "");
const expectedWorkers = Number(option("--workers", "2"));
const expectedPartitions = Number(option("--partitions", "4"));
if (!url || !screenshot) {
  console.error(USAGE);
  process.exit(2);
}
const modules = process.env.SLIPSTREAM_UI_TEST_MODULES;
if (!modules || !fs.existsSync(path.join(modules, "node_modules", "playwright-core"))) {
  console.error("SLIPSTREAM_UI_TEST_MODULES must name the directory holding node_modules/playwright-core " +
                "(scripts/setup.sh --with-ui-test installs it into ~/.cache/slipstream/ui-test)");
  process.exit(2);
}
const { chromium } = createRequire(path.join(modules, "package.json"))("playwright-core");

const started = Date.now();
const log = (message) => console.log(`[ui +${((Date.now() - started) / 1000).toFixed(1)} s] ${message}`);
const failures = [];
function check(ok, message) {
  if (!ok) {
    failures.push(message);
    log("FAILED: " + message);
  }
  return ok;
}
// Waits until `probe` (run in the test, reading the page) returns a truthy
// value; returns it, or null after `timeoutMs`.
async function waitFor(what, probe, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await probe();
      if (last) return last;
    } catch (e) {
      last = e.message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  check(false, `timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
  return null;
}
const number = (text) => Number(String(text).replace(/[^0-9.\-]/g, ""));

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  // As root there is no sandbox; the network is closed, so keep Chromium
  // from calling home (each refused connection is noise and delay).
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
});
let exitCode = 1;
const pageErrors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
  page.on("pageerror", (e) => pageErrors.push("uncaught exception: " + e.message));
  // Chromium's console names no URL for a failed response: "response" does.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) pageErrors.push("console error: " + m.text());
  });
  page.on("response", (r) => { if (r.status() >= 400) pageErrors.push(`HTTP ${r.status()} for ${r.request().method()} ${r.url()}`); });
  page.on("requestfailed", (r) => pageErrors.push("request failed: " + r.url() + " " + (r.failure()?.errorText || "")));

  const text = (selector) => page.locator(selector).first().innerText({ timeout: 2000 });
  const loadedAt = Date.now();
  const response = await page.goto(url, { waitUntil: "load" });
  check(response && response.status() === 200, `GET ${url} answered ${response && response.status()}`);
  check((await page.title()).includes("Slipstream"), "the page title names Slipstream");

  // The job: id and RUNNING, in the header and the overview.
  const jobId = await waitFor("the job id", async () => {
    const id = (await text("#job-id")).trim();
    return /^[0-9a-f]{32}$/.test(id) ? id : null;
  }, 15000);
  // Nothing else can show when this does not (a script error, a dead API): stop here.
  if (!jobId) throw new Error("the page never showed the job id");
  log(`job ${jobId}`);
  await waitFor("the state RUNNING", async () => (await text("#job-state")) === "RUNNING" &&
                                                (await text("#overview-state")) === "RUNNING", 15000);
  await waitFor("the worker count", async () => number(await text("#worker-count")) === expectedWorkers, 15000);
  check(/\d+ (ms|s|min)/.test(await text("#uptime")), "the uptime is shown");
  check(/^\d+$/.test(await text("#restore-count")), "the restore count is shown");

  // Enough refreshes for rates over time, values that move, and a checkpoint.
  await waitFor("a completed checkpoint", async () => number(await text("#checkpoints-completed")) >= 1, 30000);
  const refreshedBefore = await text("#refreshed");
  const recordsBefore = number(await text("#total-records-in"));
  await waitFor("a Redis latency series per worker", async () =>
    (await page.locator("#redis-latency-legend span").count()) >= 2 * expectedWorkers, 20000);
  await waitFor("throughput in and out per worker", async () =>
    (await page.locator("#throughput-in-legend span").count()) === expectedWorkers &&
    (await page.locator("#throughput-out-legend span").count()) === expectedWorkers, 20000);
  await waitFor("the page to refresh by itself", async () => (await text("#refreshed")) !== refreshedBefore &&
                                                            number(await text("#total-records-in")) > recordsBefore,
                10000);

  // Workers: one row each, with address, heartbeat, partitions, key groups and counters.
  const rows = await page.locator("#workers tbody tr").evaluateAll((trs) =>
    trs.map((tr) => [...tr.children].map((td) => td.innerText.trim())));
  check(rows.length === expectedWorkers, `${expectedWorkers} worker rows (saw ${rows.length})`);
  const partitionsSeen = new Set();
  for (const [id, address, heartbeat, partitions, keyGroups, recordsIn, invalid, late, written, watermark, lag,
              kafkaLag, p50, p99, redisErrors, redisLastError] of rows) {
    check(/^127\.0\.0\.1:\d+$/.test(address), `worker ${id}: address host:port (saw "${address}")`);
    check(/^\d+ ms$/.test(heartbeat) || (/^\d+ s$/.test(heartbeat) && number(heartbeat) < 10),
          `worker ${id}: a heartbeat less than 10 s old (saw "${heartbeat}")`);
    for (const p of partitions.split(", ")) partitionsSeen.add(Number(p));
    check(/^\d+–\d+$/.test(keyGroups), `worker ${id}: its key-group range (saw "${keyGroups}")`);
    check(number(recordsIn) > 0, `worker ${id}: records in > 0 (saw "${recordsIn}")`);
    check(/^[\d,]+$/.test(invalid) && /^[\d,]+$/.test(late), `worker ${id}: invalid and late counters`);
    check(number(written) > 0, `worker ${id}: features written > 0 (saw "${written}")`);
    check(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(watermark), `worker ${id}: a watermark time (saw "${watermark}")`);
    check(/\d+ (h|min)/.test(lag), `worker ${id}: the watermark's lag, hours behind in this test (saw "${lag}")`);
    check(/^[\d,]+$/.test(kafkaLag), `worker ${id}: its Kafka lag (saw "${kafkaLag}")`);
    check(/^[\d.]+ ms$/.test(p50) && /^[\d.]+ ms$/.test(p99) && number(p50) <= number(p99) && number(p99) > 0,
          `worker ${id}: Redis write latency p50 <= p99, in ms (saw "${p50}", "${p99}")`);
    check(redisErrors === "0" && redisLastError === "—",
          `worker ${id}: no Redis errors (saw "${redisErrors}", "${redisLastError}")`);
  }
  check(partitionsSeen.size === expectedPartitions,
        `every partition is assigned once (saw ${[...partitionsSeen].join(", ")})`);
  // The generator sends 1% malformed and 2% late records.
  check(number(await text("#total-invalid")) > 0, "invalid records counted");
  check(number(await text("#total-late")) > 0, "late records counted");

  // The key-group map: contiguous segments, one per worker, covering 0..max-1.
  const segments = await page.locator("#kgmap > div").evaluateAll((divs) => divs.map((d) => ({
    first: Number(d.dataset.first), last: Number(d.dataset.last), owner: d.dataset.owner,
    label: d.innerText, width: d.getBoundingClientRect().width, color: getComputedStyle(d).backgroundColor })));
  check(segments.length === expectedWorkers && new Set(segments.map((s) => s.owner)).size === expectedWorkers &&
        new Set(segments.map((s) => s.color)).size === expectedWorkers,
        `the key-group map has one coloured segment per worker (saw ${JSON.stringify(segments)})`);
  check(segments.length > 0 && segments[0].first === 0 &&
        segments.every((s, i) => i === 0 || s.first === segments[i - 1].last + 1) &&
        segments.every((s) => s.width > 50 && s.label.includes(`${s.first}–${s.last}`)),
        `the key-group map covers every key group with labelled segments (saw ${JSON.stringify(segments)})`);

  // Charts: a legend entry per series with its latest value, and ink on the canvas.
  const legend = async (id) => page.locator(`#${id}-legend span`).allInnerTexts();
  const inLegend = await legend("throughput-in");
  check(inLegend.some((t) => /: [\d,.]+ records\/s$/.test(t) && number(t.split(": ")[1]) > 0),
        `throughput in shows records/s > 0 (saw ${JSON.stringify(inLegend)})`);
  const outLegend = await legend("throughput-out");
  check(outLegend.length === expectedWorkers && outLegend.every((t) => /: [\d,.]+ features\/s$/.test(t)),
        `throughput out shows features/s per worker (saw ${JSON.stringify(outLegend)})`);
  const lagLegend = await legend("watermark-lag");
  check(lagLegend.length === expectedWorkers && lagLegend.every((t) => /: \d+ (h|min)/.test(t)),
        `the watermark lag chart shows each worker's lag (saw ${JSON.stringify(lagLegend)})`);
  const latencyLegend = await legend("redis-latency");
  check(latencyLegend.filter((t) => / p50: [\d.]+ ms$/.test(t)).length === expectedWorkers &&
        latencyLegend.filter((t) => / p99: [\d.]+ ms$/.test(t)).length === expectedWorkers,
        `the Redis latency chart shows p50 and p99 per worker (saw ${JSON.stringify(latencyLegend)})`);
  // Kafka lag per partition: every partition, with offsets and a lag.
  const partitionRows = await page.locator("#partitions tbody tr").evaluateAll((trs) =>
    trs.map((tr) => [...tr.children].map((td) => td.innerText.trim())));
  check(partitionRows.length === expectedPartitions &&
        partitionRows.every(([p, w, offset, end, lag]) => /^\d+$/.test(p) && w && /^[\d,]+$/.test(offset) &&
                                                      /^[\d,]+$/.test(end) && /^[\d,]+$/.test(lag) &&
                                                      number(offset) > 0),
        `Kafka lag per partition (saw ${JSON.stringify(partitionRows)})`);

  // Checkpoints: counts, the latest completed with its path, the history.
  check(number(await text("#checkpoints-completed")) >= 1, "completed checkpoints > 0");
  check(/^\d+$/.test(await text("#checkpoints-failed")) && /^\d+$/.test(await text("#checkpoints-in-progress")) &&
        /^\d+$/.test(await text("#checkpoints-restored")), "failed, in progress and restored counts are shown");
  const latestCompleted = await text("#latest-completed-path");
  check(latestCompleted.includes(`/${jobId}/chk-`), `the latest completed checkpoint's path (saw "${latestCompleted}")`);
  const historyRows = () => page.locator("#history tbody tr").evaluateAll((trs) =>
    trs.map((tr) => [...tr.children].map((td) => td.innerText.trim())));
  const completedCheckpoints = (rows) => rows.filter((r) => r[2] === "COMPLETED" && r[1] !== "SAVEPOINT");
  // The first checkpoints may precede any state (0 B): wait for one with state.
  await waitFor("a completed checkpoint with state in the history", async () =>
    completedCheckpoints(await historyRows()).some((r) => number(r[8]) > 0), 30000);
  const history = await historyRows();
  const completed = completedCheckpoints(history);
  check(completed.length >= 1 &&
        completed.every(([id, type, , trigger, e2e, alignment, sync, async_, size, where]) =>
          /^\d+$/.test(id) && type === "CHECKPOINT" && /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(trigger) &&
          [e2e, alignment, sync, async_].every((d) => /^\d+ (ms|s)$/.test(d)) && /^[\d.]+ (B|KiB|MiB)$/.test(size) &&
          where.includes("/chk-" + id)),
        `the history lists completed checkpoints with times, alignment, size and path (saw ${JSON.stringify(history)})`);

  // The savepoint button: the page shows where the savepoint went.
  await page.locator("#savepoint").click({ timeout: 5000 });
  const savepoint = await waitFor("the savepoint's path", async () => {
    const status = await text("#savepoint-status");
    if (status.startsWith("savepoint failed")) throw new Error(status);
    return (await page.locator("#savepoint-path").count()) ? (await text("#savepoint-path")).trim() : null;
  }, 30000);
  if (check(savepoint && path.isAbsolute(savepoint) && /\/savepoint-[0-9a-f]{6}-[0-9a-f]{12}$/.test(savepoint) &&
            savepoint.includes(`savepoint-${jobId.slice(0, 6)}-`),
            `the page shows the savepoint's path (saw "${savepoint}")`)) {
    console.log(`savepoint shown by the page: ${savepoint}`);
    check(fs.existsSync(path.join(savepoint, "_metadata")), `${savepoint}/_metadata exists`);
  }
  // The history and the checkpoint counts list it too, once refreshed.
  await waitFor("the savepoint in the history and as the latest savepoint", async () =>
    (await page.locator("#history tbody tr", { hasText: "SAVEPOINT" }).count()) >= 1 &&
    (await page.locator("#latest-savepoint-path").count()) === 1 &&
    (await text("#latest-savepoint-path")) === savepoint, 10000);

  // Charts last, once the page has been open for 20 s: each then holds about
  // ten refreshes' worth of line, and so does the screenshot.
  await page.waitForTimeout(Math.max(0, loadedAt + 20000 - Date.now()));
  for (const id of ["throughput-in", "throughput-out", "watermark-lag", "redis-latency"]) {
    // Pixels in a series colour (not the grey axes) prove lines were drawn.
    const coloured = await page.locator(`#${id}`).evaluate((c) => {
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) {
        const [r, g, b, a] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
        if (a > 200 && Math.max(r, g, b) - Math.min(r, g, b) > 60) ++n;
      }
      return n;
    });
    check(coloured > 20, `the ${id} chart draws its series (${coloured} coloured pixels)`);
  }

  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `the page fits the window's width (${overflow} px too wide)`);
  check((await text("#error")) === "", `no refresh error on the page (saw "${await text("#error")}")`);
  check(pageErrors.length === 0, `no errors in the page: ${pageErrors.join("; ")}`);
  exitCode = failures.length ? 1 : 0;
} catch (e) {
  check(false, "the test stopped: " + (e.message || e));
  if (pageErrors.length) check(false, `errors in the page: ${pageErrors.join("; ")}`);
} finally {
  try {
    const pages = browser.contexts().flatMap((c) => c.pages());
    if (pages.length) {
      fs.mkdirSync(path.dirname(screenshot), { recursive: true });
      await pages[0].screenshot({ path: screenshot, fullPage: true });
      log(`screenshot: ${screenshot}`);
    }
  } catch (e) {
    check(false, "no screenshot: " + e.message);
    exitCode = 1;
  }
  await browser.close();
}
log(failures.length ? `${failures.length} check(s) failed:\n  ${failures.join("\n  ")}` : "every check passed");
process.exit(exitCode);
