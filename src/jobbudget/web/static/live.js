// The live stream: /v1/ws, authenticated by its first message (a browser cannot put
// the key in a header, and the URL would leak it to logs), then a subscription.  A
// lost connection is shown and re-established with a growing delay (1 s .. 10 s).
import { session } from "./api.js";

export class Live {
  constructor(onStatus, onState) {
    this.onStatus = onStatus;
    this.onState = onState;
    this.ids = [];
    this.socket = null;
    this.delay = 1000;
    this.timer = null;
    this.stopped = true;
  }

  watch(ids) {
    this.ids = ids.slice(0, 1000);
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, "page left");
    this.socket = null;
  }

  connect() {
    clearTimeout(this.timer);
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.close(1000, "resubscribing");
    }
    if (!this.ids.length) {
      this.onState("idle");
      return;
    }
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/v1/ws`);
    this.socket = socket;
    this.onState("connecting");
    socket.onopen = () => {
      socket.send(JSON.stringify({ auth: session.key() }));
      socket.send(JSON.stringify({ subscribe: { budgets: this.ids } }));
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "subscribed") {
        this.delay = 1000;
        this.onState("live");
      } else if (message.type === "status") {
        this.onStatus(message);
      }
    };
    socket.onclose = (event) => {
      if (this.socket !== socket || this.stopped) return;
      this.socket = null;
      if (event.code === 4401) {
        this.onState("signed-out");
        return;
      }
      this.onState("down");
      this.timer = setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 10000);
    };
  }
}
