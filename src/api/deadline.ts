/**
 * The slow-client guard: every request on a connection must have arrived and been answered
 * within the request timeout, counted from the connection's start or the end of the
 * previous response. Node's http server enforces `requestTimeout` itself; Bun's
 * compatibility layer does not, so a client trickling a byte a second would otherwise hold
 * its connection forever (the idle timeout never fires while bytes keep coming).
 *
 * A request still arriving is answered 408 request_timeout with the Error body; a request
 * whose answer has started is cut off.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { RinglogError } from "../errors.ts";

interface Connection {
  timer?: ReturnType<typeof setTimeout>;
  res?: ServerResponse;
}

export function enforceRequestDeadline(server: Server, timeoutMs: number): void {
  const connections = new WeakMap<Socket, Connection>();
  const body = JSON.stringify(new RinglogError("request_timeout", `the request did not arrive and complete within ${timeoutMs} ms`).toBody());

  const expire = (socket: Socket, c: Connection) => {
    const res = c.res;
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
  const arm = (socket: Socket, c: Connection) => {
    if (c.timer) clearTimeout(c.timer);
    c.timer = setTimeout(() => expire(socket, c), timeoutMs);
    c.timer.unref();
  };

  server.on("connection", (socket: Socket) => {
    const c: Connection = {};
    connections.set(socket, c);
    arm(socket, c);
    socket.once("close", () => c.timer && clearTimeout(c.timer));
  });
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const c = connections.get(req.socket);
    if (!c) return;
    c.res = res;
    res.once("finish", () => {
      c.res = undefined;
      arm(req.socket, c);
    });
  });
}
