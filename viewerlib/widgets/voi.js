// Shared by every viewer's front end (prepended by viewerlib/widgets/_frontend.py):
// the VOI stage of PS3.3 C.11.2.1.2 and C.11.2.1.3 in JavaScript, written to give the
// same grey levels as viewerlib.pipeline.voi.apply_windowing, to 0..255.

// A function from a modality value to a grey level in [0, 255] (not yet rounded).
function voiFunction(kind, center, width) {
  const c = Number(center);
  const w = Number(width);
  if (kind === "LINEAR_EXACT") {
    // C.11.2.1.3.2: the ramp runs exactly from c - w/2 to c + w/2.
    return (x) => (x <= c - w / 2 ? 0 : x > c + w / 2 ? 255 : ((x - c) / w + 0.5) * 255);
  }
  if (kind === "SIGMOID") {
    // C.11.2.1.3.1: y = 255 / (1 + exp(-4 (x - c) / w)).
    return (x) => 255 / (1 + Math.exp(-4 * (x - c) / w));
  }
  // C.11.2.1.2.1 LINEAR: width >= 1, the ramp between c - 0.5 -+ (w - 1) / 2.
  if (w <= 1) return (x) => (x <= c - 0.5 ? 0 : 255);
  const low = c - 0.5 - (w - 1) / 2;
  const high = c - 0.5 + (w - 1) / 2;
  return (x) => (x <= low ? 0 : x > high ? 255 : ((x - (c - 0.5)) / (w - 1) + 0.5) * 255);
}

// Table from int16 value + 32768 to an opaque grey RGBA pixel (one 32-bit word, in
// the byte order of ImageData on little-endian machines), with the presentation
// inversion (MONOCHROME1, INVERSE) applied after the window. Cached on the last key.
function makeLutCache() {
  let key = "";
  let table = null;
  return (kind, center, width, invert) => {
    const next = kind + "/" + center + "/" + width + "/" + invert;
    if (next !== key) {
      const grey = voiFunction(kind, center, width);
      const levels = new Uint8ClampedArray(1);
      table = new Uint32Array(65536);
      for (let i = 0; i < 65536; i++) {
        // float32 first, as viewerlib.pipeline.voi returns it, so that rounding
        // (half to even in both) gives the pipeline's display values exactly.
        const value = Math.fround(grey(i - 32768));
        levels[0] = invert ? 255 - value : value;
        const g = levels[0];
        table[i] = (0xff000000 | (g << 16) | (g << 8) | g) >>> 0;
      }
      key = next;
    }
    return table;
  };
}

// Window one frame of modality values (Int16Array via the table, Float32Array
// directly, NaN as black) into RGBA pixels.
function windowInto(pixels, frame, kind, center, width, invert, lutCache) {
  if (frame instanceof Int16Array) {
    const table = lutCache(kind, center, width, invert);
    // One 32-bit store per pixel instead of four byte stores.
    const words = new Uint32Array(pixels.buffer, pixels.byteOffset, frame.length);
    for (let i = 0; i < frame.length; i++) words[i] = table[frame[i] + 32768];
    return;
  }
  const grey = voiFunction(kind, center, width);
  for (let i = 0, j = 0; i < frame.length; i++, j += 4) {
    const v = frame[i];
    let value = Number.isNaN(v) ? 0 : Math.fround(grey(v));
    if (invert && !Number.isNaN(v)) value = 255 - value;
    pixels[j] = pixels[j + 1] = pixels[j + 2] = value;
    pixels[j + 3] = 255;
  }
}

// In-page bus that links viewers of one comparison without a kernel round trip.
// Plain events in this page's memory; nothing is stored.
const SYNC_EVENT = "lightbox-sync";
function publish(detail) {
  window.dispatchEvent(new CustomEvent(SYNC_EVENT, { detail }));
}
function subscribe(handler) {
  const listener = (event) => handler(event.detail);
  window.addEventListener(SYNC_EVENT, listener);
  return () => window.removeEventListener(SYNC_EVENT, listener);
}

function injectStyle(id, css) {
  if (document.getElementById(id)) return;
  const style = document.createElement("style");
  style.id = id;
  style.textContent = css;
  document.head.appendChild(style);
}

function element(tag, className, parent) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (parent) parent.appendChild(node);
  return node;
}

// viewerlib.viewer.open_with_report (report_layout.py): the images and the study's
// report side by side at one height, the report under the images when the panel is
// too narrow for both. Injected by each viewer that may take part.
const REPORT_LAYOUT_CSS = `
.lbx-with-report { flex-wrap: wrap; align-items: stretch; gap: 6px;
  --lbx-height: 600px; }
.lbx-with-report > .lbx-images-pane { flex: 3 1 420px; min-width: 0; }
.lbx-with-report > .lbx-report-pane { flex: 2 1 300px; min-width: 0;
  height: var(--lbx-height); display: flex; flex-direction: column; }
.lbx-report-pane > .lbx-report-view { flex: 1 1 auto; min-height: 0; }
.lbx-report-pane .lbx-report, .lbx-report-pane .lbx-document { height: 100%;
  max-height: none; box-sizing: border-box; }
.lbx-with-report .lbx-report-pane .lbx-head,
.lbx-with-report .lbx-report-pane .lbx-doc-head { white-space: pre-wrap; }
.lbx-report-pane .lbx-no-report { padding: 8px 12px; }
`;
