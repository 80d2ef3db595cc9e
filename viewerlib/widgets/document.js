// Front end of the document viewer: PDF pages arrive from the kernel as RGB pixels
// and are painted on a canvas. The PDF itself never reaches the page, so nothing can
// be downloaded or cached; texts from DICOM are set with textContent.

const DOCUMENT_CSS = `
.lbx-document { background: #525659; color: #eee; font: 12px/1.4 system-ui, sans-serif;
  display: flex; flex-direction: column; height: var(--lbx-height, 640px); outline: none; }
.lbx-document .lbx-doc-bar { display: flex; gap: 6px; align-items: center;
  padding: 4px 8px; background: #2b2b2b; flex-wrap: wrap; }
.lbx-document .lbx-doc-bar button { background: #444; color: #eee; border: 1px solid #666;
  border-radius: 3px; min-height: 24px; padding: 1px 8px; cursor: pointer; }
.lbx-document .lbx-doc-head { white-space: pre; color: #ccc; flex: 1 1 auto; }
.lbx-document .lbx-doc-pages { overflow: auto; flex: 1; text-align: center; padding: 8px; }
.lbx-document canvas { background: #fff; box-shadow: 0 0 6px #000; max-width: 100%; }
`;

function render({ model, el }) {
  injectStyle("lbx-document-style", DOCUMENT_CSS);
  injectStyle("lbx-report-layout-style", REPORT_LAYOUT_CSS);
  const root = element("div", "lbx-document", el);
  root.tabIndex = 0;
  const bar = element("div", "lbx-doc-bar", root);
  const head = element("div", "lbx-doc-head", bar);
  const overlay = model.get("overlay") || {};
  head.textContent = [model.get("title"), overlay.patient, overlay.study]
    .filter(Boolean).join("  |  ");
  const previous = element("button", "lbx-doc-previous", bar);
  previous.type = "button";
  previous.textContent = "\u25c0 Previous";
  const counter = element("span", "lbx-doc-counter", bar);
  const next = element("button", "lbx-doc-next", bar);
  next.type = "button";
  next.textContent = "Next \u25b6";
  const pages = element("div", "lbx-doc-pages", root);
  const canvas = element("canvas", "lbx-doc-page", pages);
  let shown = -1;

  function count() { return model.get("number_of_pages"); }
  function go(index) {
    const target = Math.min(count() - 1, Math.max(0, index));
    if (target === model.get("page_index") && target === shown) return;
    model.set("page_index", target);
    model.save_changes();
    request();
  }
  function request() {
    counter.textContent = "Page " + (model.get("page_index") + 1) + " / " + count();
    root.dataset.page = "loading";
    model.send({ type: "page", page_index: model.get("page_index") });
  }
  previous.addEventListener("click", () => go(model.get("page_index") - 1));
  next.addEventListener("click", () => go(model.get("page_index") + 1));
  root.addEventListener("keydown", (event) => {
    const steps = { ArrowRight: 1, PageDown: 1, ArrowDown: 1, ArrowLeft: -1, PageUp: -1,
      ArrowUp: -1 };
    if (event.key in steps) {
      event.preventDefault();
      go(model.get("page_index") + steps[event.key]);
    }
  });
  model.on("change:page_index", () => { if (model.get("page_index") !== shown) request(); });

  model.on("msg:custom", (message, buffers) => {
    if (message.type !== "page" || message.page_index !== model.get("page_index")) return;
    const data = buffers[0];
    const rgb = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    canvas.width = message.columns;
    canvas.height = message.rows;
    const context = canvas.getContext("2d");
    const image = context.createImageData(message.columns, message.rows);
    const out = image.data;
    for (let i = 0, o = 0; i < rgb.length; i += 3, o += 4) {
      out[o] = rgb[i]; out[o + 1] = rgb[i + 1]; out[o + 2] = rgb[i + 2]; out[o + 3] = 255;
    }
    context.putImageData(image, 0, 0);
    // One CSS pixel per page pixel at most; narrower panels shrink the page.
    canvas.style.width = message.columns / (window.devicePixelRatio || 1) + "px";
    shown = message.page_index;
    previous.disabled = shown === 0;
    next.disabled = shown >= count() - 1;
    root.dataset.page = String(shown);
    root.dataset.painted = "true";
  });
  request();
  return () => { canvas.width = 0; canvas.height = 0; };
}

export default { render };
