// The live stream: /v1/ws, authenticated by its first message (a browser cannot put
// the key in a header, and the URL would leak it to logs), then a subscription.  One
// socket follows at most 1,000 budgets (the server's limit), so more budgets take more
// sockets.  A lost connection, or one silent for longer than three of the server's
// 15 s heartbeats, is shown and re-established with a growing delay (1 s .. 10 s).
import { session } from "./api.js";

const PER_SOCKET = 1000;
const SILENT_MS = 35000;

export class Live {
  constructor(onStatus, onState) {
    this.onStatus = onStatus;
    this.onState = onState;
    this.links = [];
    this.stopped = true;
    this.watchdog = null;
  }

  watch(ids) {
    this.stop();
    this.stopped = false;
    for (let i = 0; i < ids.length; i += PER_SOCKET) this.links.push({ ids: ids.slice(i, i + PER_SOCKET), state: "connecting", delay: 1000 });
    if (!this.links.length) {
      this.onState("idle");
      return;
    }
    this.links.forEach((link) => this.open(link));
    this.watchdog = setInterval(() => {
      for (const link of this.links) if (link.socket && Date.now() - link.heard > SILENT_MS) link.socket.close(4000, "silent");
    }, 5000);
    this.report();
  }

  stop() {
    this.stopped = true;
    clearInterval(this.watchdog);
    for (const link of this.links) {
      clearTimeout(link.timer);
      if (link.socket) {
        link.socket.onclose = null;
        link.socket.close(1000, "page left");
      }
    }
    this.links = [];
  }

  report() {
    const states = this.links.map((link) => link.state);
    if (states.includes("signed-out")) this.onState("signed-out");
    else if (states.includes("down")) this.onState("down");
    else if (states.every((s) => s === "live")) this.onState("live");
    else this.onState("connecting");
  }

  open(link) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/v1/ws`);
    link.socket = socket;
    link.heard = Date.now();
    socket.onopen = () => {
      socket.send(JSON.stringify({ auth: session.key() }));
      socket.send(JSON.stringify({ subscribe: { budgets: link.ids } }));
    };
    socket.onmessage = (event) => {
      link.heard = Date.now();
      const message = JSON.parse(event.data);
      if (message.type === "subscribed") {
        link.delay = 1000;
        link.state = "live";
        this.report();
      } else if (message.type === "status") {
        this.onStatus(message);
      }
    };
    socket.onclose = (event) => {
      if (link.socket !== socket || this.stopped) return;
      link.socket = null;
      link.state = event.code === 4401 ? "signed-out" : "down";
      this.report();
      if (link.state === "signed-out") return;
      link.timer = setTimeout(() => {
        if (!this.stopped) this.open(link);
      }, link.delay);
      link.delay = Math.min(link.delay * 2, 10000);
    };
  }
}
