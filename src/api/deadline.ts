/**
 * The slow-client guard: every request on a connection must have arrived and been answered
 * within the request timeout, counted from the connection's start or the end of the
 * previous response. Node's http server enforces `requestTimeout` itself; Bun's
 * compatibility layer does not, so a client trickling a byte a second would otherwise hold
 * its connection forever (the idle timeout never fires while bytes keep coming).
 *
 * A request still arriving is answered 408 request_timeout with the Error body; a request
 * whose answer has started is cut off.
 *
 * One sweep every SWEEPS_PER_TIMEOUT-th of the timeout checks every connection, instead of a
 * timer re-armed and a finish listener added for each request, on the path every client
 * write takes. The price is precision: a slow client is cut off between one and
 * 1 + 1/SWEEPS_PER_TIMEOUT timeouts after its window opened.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { RinglogError } from "../errors.ts";

const SWEEPS_PER_TIMEOUT = 4;

interface Connection {
  socket: Socket;
  /** The response of the request being served; undefined between requests. */
  res?: ServerResponse;
  /** The sweep in which the connection's current window opened. */
  opened: number;
}

export function enforceRequestDeadline(server: Server, timeoutMs: number): void {
  const connections = new Map<Socket, Connection>();
  const body = JSON.stringify(new RinglogError("request_timeout", `the request did not arrive and complete within ${timeoutMs} ms`).toBody());
  let sweep = 0;

  const expire = ({ socket, res }: Connection) => {
    connections.delete(socket);
    if (res && !res.headersSent) {
      res.writeHead(408, { "content-type": "application/json", "content-length": Buffer.byteLength(body), connection: "close" });
      res.end(body, () => socket.destroy());
    } else if (!res && socket.writable) {
      socket.end(`HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      setTimeout(() => socket.destroy(), 100).unref();
    } else {
      socket.destroy();
    }
  };

  const timer = setInterval(
    () => {
      sweep++;
      for (const c of connections.values()) {
        // A finished response opened the next window when it ended: after the previous sweep,
        // which saw it unfinished.
        if (c.res?.writableFinished) {
          c.res = undefined;
          c.opened = sweep - 1;
        }
        if (sweep - c.opened > SWEEPS_PER_TIMEOUT) expire(c);
      }
    },
    Math.max(1, Math.floor(timeoutMs / SWEEPS_PER_TIMEOUT)),
  );
  timer.unref();
  server.once("close", () => clearInterval(timer));

  server.on("connection", (socket: Socket) => {
    connections.set(socket, { socket, opened: sweep });
    socket.once("close", () => connections.delete(socket));
  });
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const c = connections.get(req.socket);
    if (!c) return;
    // The previous response ended since the last sweep: this request's window opened then.
    if (c.res) c.opened = sweep;
    c.res = res;
  });
}
