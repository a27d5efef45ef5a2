// The server the browser tests load their pages from: it serves the pages and passes /api/
// through to Tollgate unchanged, Host header included, so that page and API share one origin
// (as behind a reverse proxy) and Tollgate sees the page's origin as its own.

import { createServer, request } from "node:http";
import { readFile } from "node:fs/promises";

/// Starts the server on 127.0.0.1:`port` (0: any free port) in front of `tollgate` (a URL).
/// `pages` maps path prefixes to files of this directory; the longest prefix that matches a
/// request's path gives its page. Resolves to the server's origin and a function that closes it.
export async function startPageServer({ tollgate, pages, port = 0 }) {
  const served = await Promise.all(
    Object.entries(pages).map(async ([prefix, file]) =>
      [prefix, await readFile(new URL(`./${file}`, import.meta.url))]),
  );
  served.sort(([a], [b]) => b.length - a.length);
  const server = createServer((incoming, outgoing) => {
    if (!incoming.url.startsWith("/api/")) {
      const path = new URL(incoming.url, "http://page").pathname;
      const page = served.find(([prefix]) => path.startsWith(prefix));
      if (!page) {
        outgoing.writeHead(404);
        outgoing.end();
        return;
      }
      outgoing.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
      outgoing.end(page[1]);
      return;
    }
    const upstream = request(
      {
        host: tollgate.hostname,
        port: tollgate.port,
        path: incoming.url,
        method: incoming.method,
        headers: incoming.headers,
      },
      (answer) => {
        outgoing.writeHead(answer.statusCode, answer.headers);
        answer.pipe(outgoing);
      },
    );
    upstream.on("error", (err) => {
      outgoing.writeHead(502);
      outgoing.end(String(err));
    });
    incoming.pipe(upstream);
  });
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () => server.close(),
  };
}

/// Launches Debian's Chromium (or CHROMIUM) headless through playwright-core.
export async function launchChromium(chromium) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    timeout: 30_000,
  });
}
