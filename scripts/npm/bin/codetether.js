#!/usr/bin/env node
// `codetether` from npm: fetch the prebuilt single-file binary once, verify it, run it.
//
// First run: download SHA256SUMS and codetether-<version>-<os>-<arch> from the release
// (CODETETHER_RELEASE_URL, default the GitHub release of this package's version), check the
// file's SHA-256 against SHA256SUMS, make it executable and rename it into the cache
// ($XDG_CACHE_HOME/codetether/npm/<version>/). Later runs find it there and go straight to
// running it. The binary gets every argument, our stdio, and its exit status (or signal)
// becomes ours. Only Node's standard library is used.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const http = require("http");
const https = require("https");
const os = require("os");
const path = require("path");
const { spawn } = require("child_process");

const VERSION = require("../package.json").version;
const REPO_URL = "https://github.com/codetether/codetether/releases";
const OS_NAMES = { linux: "linux", darwin: "darwin", win32: "windows" };
const ARCH_NAMES = { x64: "x86_64", arm64: "arm64" };
const MAX_REDIRECTS = 5;
const IDLE_TIMEOUT_MS = 60000;

function fail(message) {
  process.stderr.write(`codetether (npm): ${message}\n`);
  process.exit(1);
}

function platformTag() {
  if (process.env.CODETETHER_PLATFORM) return process.env.CODETETHER_PLATFORM;
  const osName = OS_NAMES[process.platform];
  const arch = ARCH_NAMES[process.arch];
  if (!osName || !arch) {
    fail(`no prebuilt binary for ${process.platform}/${process.arch}; ` +
         "pip install codetether works anywhere with Python 3.11+");
  }
  return `${osName}-${arch}`;
}

function cacheDir() {
  const base = process.platform === "win32"
    ? process.env.LOCALAPPDATA || path.join(os.homedir(), "AppData", "Local")
    : process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache");
  return path.join(base, "codetether", "npm", VERSION);
}

// GET a URL into a writable stream (following redirects: GitHub sends assets elsewhere),
// feeding every chunk to onChunk as well; resolves when the body is complete.
function fetchTo(url, sink, onChunk, redirects = 0) {
  return new Promise((resolve, reject) => {
    const client = url.startsWith("https:") ? https : url.startsWith("http:") ? http : null;
    if (!client) return reject(new Error(`unsupported URL ${url}`));
    const req = client.get(url, { headers: { "User-Agent": `codetether-npm/${VERSION}` } }, (res) => {
      const status = res.statusCode || 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (redirects >= MAX_REDIRECTS) return reject(new Error(`too many redirects at ${url}`));
        const next = new URL(res.headers.location, url).toString();
        return resolve(fetchTo(next, sink, onChunk, redirects + 1));
      }
      if (status !== 200) {
        res.resume();
        return reject(new Error(`${url}: HTTP ${status}`));
      }
      res.on("data", (chunk) => {
        onChunk(chunk);
        if (!sink.write(chunk)) {
          res.pause();
          sink.once("drain", () => res.resume());
        }
      });
      res.on("end", resolve);
      res.on("error", reject);
    });
    req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(new Error(`${url}: no data for 60 s`)));
    req.on("error", reject);
  });
}

async function fetchText(url) {
  const parts = [];
  await fetchTo(url, { write: () => true }, (chunk) => parts.push(chunk));
  return Buffer.concat(parts).toString("utf8");
}

// "<hex>  <name>" or "<hex> *<name>" lines, as sha256sum writes them.
function expectedDigest(sums, name) {
  for (const line of sums.split(/\r?\n/)) {
    const match = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.trim());
    if (match && match[2] === name) return match[1];
  }
  return null;
}

async function download(base, name, target) {
  const sums = await fetchText(`${base}/SHA256SUMS`);
  const expected = expectedDigest(sums, name);
  if (!expected) throw new Error(`${name} is not listed in ${base}/SHA256SUMS`);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = `${target}.${process.pid}.tmp`;
  const hash = crypto.createHash("sha256");
  const out = fs.createWriteStream(tmp, { mode: 0o755 });
  try {
    await fetchTo(`${base}/${name}`, out, (chunk) => hash.update(chunk));
    // wait for "close", not "finish": exec'ing a file still open for writing fails (ETXTBSY)
    await new Promise((resolve, reject) => {
      out.once("close", resolve);
      out.once("error", reject);
      out.end();
    });
    const actual = hash.digest("hex");
    if (actual !== expected) {
      throw new Error(`checksum mismatch for ${name} (expected ${expected}, got ${actual}); ` +
                      "nothing was kept");
    }
    fs.chmodSync(tmp, 0o755);
    fs.renameSync(tmp, target); // atomic: a concurrent first run sees all or nothing
  } finally {
    out.destroy();
    fs.rmSync(tmp, { force: true });
  }
}

function run(binary, args) {
  let child;
  try {
    child = spawn(binary, args, { stdio: "inherit" });
  } catch (err) {
    fail(`cannot run ${binary}: ${err.message}`);
  }
  // Ctrl-C reaches the binary directly (same process group): we just wait for its exit.
  // SIGTERM/SIGHUP are usually sent to us alone (process managers), so we pass them on.
  const ignore = () => {};
  const forward = (signal) => { if (child.exitCode === null) child.kill(signal); };
  process.on("SIGINT", ignore);
  process.on("SIGTERM", forward);
  process.on("SIGHUP", forward);
  child.on("error", (err) => fail(`cannot run ${binary}: ${err.message}`));
  child.on("exit", (code, signal) => {
    process.removeListener("SIGINT", ignore);
    process.removeListener("SIGTERM", forward);
    process.removeListener("SIGHUP", forward);
    if (signal) process.kill(process.pid, signal);
    else process.exit(code === null ? 1 : code);
  });
}

async function main() {
  const tag = platformTag();
  const name = `codetether-${VERSION}-${tag}${tag.startsWith("windows-") ? ".exe" : ""}`;
  const binary = path.join(cacheDir(), name);
  if (!fs.existsSync(binary)) {
    const base = (process.env.CODETETHER_RELEASE_URL || `${REPO_URL}/download/v${VERSION}`)
      .replace(/\/+$/, "");
    process.stderr.write(`codetether (npm): downloading ${name} from ${base}\n`);
    try {
      await download(base, name, binary);
    } catch (err) {
      fail(err.message);
    }
  }
  run(binary, process.argv.slice(2));
}

main();
