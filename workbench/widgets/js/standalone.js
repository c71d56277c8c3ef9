// Standalone page of a canvas view (workbench/widgets/standalone.py): the view's own module (common.js + its
// file, with `export default` turned into `const WB_MODULE =`) comes first in the same <script type="module">, then
// this boot code. It reads the view's state from <script id="wb-state" type="application/json"> (bytes traits
// as {"$b64": "..."}) and runs the view's render() against WbModel, a small stand-in for the anywidget `model`
// (get / set / on / off / save_changes / send): controls change the state here and redraw; nothing is sent anywhere.

function wbFromBase64(s) {
  // base64 -> DataView, as anywidget delivers a bytes trait
  const bin = atob(s), out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return new DataView(out.buffer);
}

function wbRevive(v) {
  const isB64 = v && typeof v === "object" && !Array.isArray(v) && typeof v.$b64 === "string"
    && Object.keys(v).length === 1;
  return isB64 ? wbFromBase64(v.$b64) : v;
}

class WbModel {
  // the anywidget model interface over a plain object; events "change:<name>" and "change", fired on set()
  constructor(state) {
    this.state = state;
    this.handlers = new Map();
    this.saves = 0;                                      // save_changes() calls (there is no kernel to save to)
  }
  get(name) { return this.state[name]; }
  set(name, value) {
    const old = this.state[name];
    this.state[name] = value;
    const bytes = ArrayBuffer.isView(old) || ArrayBuffer.isView(value);     // JSON would call any two equal
    if (old !== value && (bytes || JSON.stringify(old) !== JSON.stringify(value))) {
      this.emit("change:" + name, value);
      this.emit("change", value);
    }
  }
  on(event, fn) {
    for (const ev of event.split(" ")) {
      if (!this.handlers.has(ev)) this.handlers.set(ev, new Set());
      this.handlers.get(ev).add(fn);
    }
  }
  off(event, fn) {
    if (!event) { this.handlers.clear(); return; }
    for (const ev of event.split(" ")) {
      if (!fn) this.handlers.delete(ev);
      else if (this.handlers.has(ev)) this.handlers.get(ev).delete(fn);
    }
  }
  emit(event, value) {
    for (const fn of [...(this.handlers.get(event) || [])]) fn(this, value);
  }
  save_changes() { this.saves += 1; }
  send() {}                                               // custom messages go to a kernel: there is none
}

async function wbBoot() {
  const raw = JSON.parse(document.getElementById("wb-state").textContent);
  const state = {};
  for (const [k, v] of Object.entries(raw)) state[k] = wbRevive(v);
  const model = new WbModel(state);
  window.wbModel = model;                                // for the browser console and tests
  const el = document.getElementById("wb-view");
  try {
    if (WB_MODULE.initialize) await WB_MODULE.initialize({ model });
    await WB_MODULE.render({ model, el });
    document.body.dataset.ready = "1";
  } catch (e) {
    wbEl("pre", "wb-boot-error", el, "this saved view could not start: " + (e && e.stack ? e.stack : e));
    throw e;
  }
}

wbBoot();
