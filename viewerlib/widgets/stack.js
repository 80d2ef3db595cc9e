// Front end of the stack viewer. The kernel sends modality values (int16 or float32)
// as binary buffers; this file windows them (voi.js), draws them on a canvas and
// turns wheel, keys, drags, touches and the toolbar into slice, window, zoom, pan,
// rotation and measurement events. Frames live only in this page's memory: nothing
// goes to browser storage. Every text from DICOM is set with textContent.
//
// Two tiers of frames: a reduced preview of every slice, and lossless slices within
// a window of `lossless_slices` around the one shown. A slice without its lossless
// frame is painted from its preview, marked "PREVIEW" on screen; once the user has
// been still for `lossless_after_ms`, the missing lossless slices of the window are
// asked for and the true pixel grid replaces the preview.

const STACK_CSS = `
.lbx-stack { position: relative; display: flex; flex-direction: column; background: #000; color: #e8e8e8;
  user-select: none; font: 12px/1.35 system-ui, sans-serif; touch-action: none;
  outline: none; height: var(--lbx-height, 560px); min-height: 320px; overflow: hidden; }
.lbx-area { position: relative; flex: 1; min-height: 120px; overflow: hidden;
  contain: strict; }
.lbx-area canvas.lbx-view { position: absolute; left: 0; top: 0; width: 100%;
  height: 100%; image-rendering: pixelated; cursor: crosshair; touch-action: none; }
.lbx-corner { position: absolute; white-space: pre; pointer-events: none;
  text-shadow: 0 0 3px #000, 0 0 2px #000; }
.lbx-tl { top: 6px; left: 8px; } .lbx-tr { top: 6px; right: 8px; text-align: right; }
/* In a narrow pane (a comparison on a tablet) the top corners keep to their half,
   clear of the orientation marker between them; a long line ends in an ellipsis. */
.lbx-tl, .lbx-tr { max-width: calc(50% - 18px); overflow: hidden;
  text-overflow: ellipsis; }
.lbx-bl { bottom: 6px; left: 8px; } .lbx-br { bottom: 6px; right: 8px; text-align: right; }
.lbx-marker { position: absolute; font-weight: 600; font-size: 14px; pointer-events: none;
  color: #ffd54a; text-shadow: 0 0 3px #000; }
.lbx-marker-left { left: 6px; top: 50%; } .lbx-marker-right { right: 6px; top: 50%; }
.lbx-marker-top { top: 4px; left: 50%; transform: translateX(-50%); }
.lbx-marker-bottom { bottom: 40px; left: 50%; transform: translateX(-50%); }
.lbx-scale { position: absolute; bottom: 44px; right: 12%; height: 6px;
  border: 1px solid #e8e8e8; border-top: none; pointer-events: none; }
.lbx-scale-label { bottom: 52px; right: 12%; }
.lbx-quality { position: absolute; top: 24px; left: 50%; transform: translateX(-50%);
  padding: 1px 8px; border-radius: 3px; background: rgba(160, 80, 0, .85);
  color: #fff; font-weight: 600; pointer-events: none; }
.lbx-quality[hidden] { display: none; }
.lbx-label { position: absolute; white-space: pre; pointer-events: none; color: #7fff7f;
  font-size: 12px; text-shadow: 0 0 3px #000; }
.lbx-compare-pane { flex: 1 1 0; min-width: 0; }
.lbx-footer { padding: 3px 6px; background: rgba(20,20,20,.95); }
.lbx-bar { display: flex; flex-wrap: nowrap; gap: 3px; align-items: center;
  overflow: hidden; }
.lbx-bar > *, .lbx-menu > * { flex: none; }
/* The preset menu gives way first, so the pinned tools fit a narrow pane. */
.lbx-bar > select.lbx-presets { flex: 0 1 auto; min-width: 5.5em; }
.lbx-bar button, .lbx-bar select, .lbx-bar input[type=number],
.lbx-menu button, .lbx-menu input[type=number] { background: #333;
  color: #eee; border: 1px solid #555; border-radius: 3px; font-size: 11px;
  padding: 1px 5px; cursor: pointer; min-height: 22px; }
.lbx-bar input[type=number], .lbx-menu input[type=number] { width: 3.2em; }
.lbx-bar button[aria-pressed="true"], .lbx-menu button[aria-pressed="true"] {
  background: #1e5a8c; }
.lbx-footer input.lbx-slider { display: block; width: 100%; margin: 3px 0 0; }
.lbx-menu { position: absolute; right: 6px; z-index: 5; display: flex;
  flex-wrap: wrap; gap: 3px; max-width: min(360px, 80%); padding: 4px;
  background: rgba(20,20,20,.97); border: 1px solid #555; border-radius: 3px; }
.lbx-menu[hidden], .lbx-bar [hidden] { display: none; }
/* A slice that could not be decoded: a banner over the image, marks by the slider. */
.lbx-missing { position: absolute; left: 50%; top: 50%; z-index: 3;
  transform: translate(-50%, -50%); max-width: min(80%, 460px); padding: 8px 12px;
  background: rgba(150, 0, 0, .93); border: 2px solid #ff5252; border-radius: 4px;
  color: #fff; font-size: 13px; font-weight: 600; text-align: center;
  white-space: pre-wrap; pointer-events: none; }
.lbx-missing[hidden], .lbx-missing-refused[hidden], .lbx-missing-marks[hidden] {
  display: none; }
.lbx-missing-refused { margin-top: 6px; font-weight: 400; }
/* What a reader must not miss about the series (kernel trait alerts): one line
   above the image while there is any, its notes over the image on a click. */
.lbx-alerts { flex: none; }
.lbx-alerts[hidden], .lbx-alerts-detail[hidden] { display: none; }
.lbx-alerts-empty { visibility: hidden; }
.lbx-alerts-line { display: block; width: 100%; margin: 0; padding: 2px 8px;
  border: none; border-bottom: 1px solid #ffb74d; background: #6b3f00;
  color: #fff; font: 600 12px/1.35 system-ui, sans-serif; text-align: left;
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; cursor: pointer; }
.lbx-alerts-line:focus-visible { outline: 2px solid #ffd54a; outline-offset: -2px; }
.lbx-alerts-detail { position: absolute; left: 0; right: 0; top: 0; z-index: 6;
  max-height: 60%; overflow: auto; padding: 6px 10px; background: rgba(40,25,0,.96);
  border-bottom: 1px solid #ffb74d; color: #fff; white-space: pre-wrap;
  user-select: text; }
.lbx-alert-title { font-weight: 600; }
.lbx-alert-notes { margin: 2px 0 6px; color: #f3e3c3; }
.lbx-missing-marks { position: relative; height: 5px; margin: 3px 8px 0; }
.lbx-missing-mark { position: absolute; top: 0; height: 100%; min-width: 2px;
  background: #ff5252; transform: translateX(-50%); }
`;

// Kernel sync of the view state: after this long still, and at least this often.
const SYNC_STILL_MS = 250;
const SYNC_EVERY_MS = 1000;
// Fewest milliseconds between two moves of the slice slider's thumb while the
// slice keeps changing (it shows the slice exactly once the slice is still).
const SLIDER_EVERY_MS = 100;

const STACK_TOOLS = [["auto", "Auto"], ["window", "W/L"], ["pan", "Pan"],
  ["zoom", "Zoom"], ["distance", "Length"], ["angle", "Angle"], ["region", "ROI"]];
const MEASURE_POINTS = { distance: 2, angle: 3, region: 2 };

// Keep `bar` to one row: items that do not fit move, in the order of
// `collapseFirst` and then from the end, into `menu`, opened by `more`. Items
// added to the bar later (add-ons) take part too. Returns the re-fit function.
function collapsingToolbar(bar, menu, more, footer, { pinned, collapseFirst }) {
  const canonical = [...bar.children].filter((item) => item !== more);
  const fits = () => bar.scrollWidth <= bar.clientWidth + 1;
  function fit() {
    if (!bar.clientWidth) return; // not laid out yet (hidden output)
    for (const item of canonical) bar.insertBefore(item, more);
    more.hidden = true;
    menu.hidden = true;
    more.setAttribute("aria-expanded", "false");
    if (fits()) return;
    more.hidden = false;
    const rest = canonical.filter((item) => !pinned.includes(item)
      && !collapseFirst.includes(item)).reverse();
    const moved = [];
    for (const item of [...collapseFirst.filter(Boolean), ...rest]) {
      if (fits()) break;
      moved.push(item);
      item.remove();
    }
    moved.sort((a, b) => canonical.indexOf(a) - canonical.indexOf(b));
    menu.replaceChildren(...moved);
  }
  // New items from an add-on: remember them in their place, then fit again.
  const watcher = new MutationObserver(() => {
    const added = [...bar.children].filter((item) => item !== more
      && !canonical.includes(item));
    if (!added.length) return;
    canonical.push(...added);
    fit();
  });
  watcher.observe(bar, { childList: true });
  fit.disconnect = () => watcher.disconnect();
  return fit;
}

function render({ model, el }) {
  injectStyle("lbx-stack-style", STACK_CSS);
  injectStyle("lbx-report-layout-style", REPORT_LAYOUT_CSS);
  const root = element("div", "lbx-stack", el);
  root.tabIndex = 0;
  root.setAttribute("role", "img");
  const alertBox = element("div", "lbx-alerts", root);
  const area = element("div", "lbx-area", root);
  const view = element("canvas", "lbx-view lightbox-stack-canvas", area);
  const corners = {
    tl: element("div", "lbx-corner lbx-tl", area),
    tr: element("div", "lbx-corner lbx-tr", area),
    bl: element("div", "lbx-corner lbx-bl", area),
    br: element("div", "lbx-corner lbx-br", area),
  };
  const markers = {};
  for (const edge of ["left", "right", "top", "bottom"]) {
    markers[edge] = element("div", "lbx-marker lbx-marker-" + edge, area);
  }
  const scale = element("div", "lbx-scale", area);
  const scaleLabel = element("div", "lbx-corner lbx-scale-label", area);
  const labels = element("div", "lbx-labels", area);
  // The footer: one row of tools (what does not fit goes into the "More" menu),
  // then the slice slider.
  const footer = element("div", "lbx-footer", root);
  const bar = element("div", "lbx-bar", footer);
  bar.setAttribute("role", "toolbar");
  const menu = element("div", "lbx-menu", root);
  menu.hidden = true;

  const rows = model.get("rows");
  const columns = model.get("columns");
  const count = model.get("number_of_slices");
  const frames = new Array(count); // lossless modality values, or undefined
  const previews = new Array(count); // reduced modality values, or undefined
  const requested = new Set(); // lossless slices asked for and not yet here
  let losslessHeld = 0;
  const native = document.createElement("canvas");
  native.width = columns;
  native.height = rows;
  const nativeContext = native.getContext("2d");
  const image = nativeContext.createImageData(columns, rows);
  // The preview canvas gets its size from the first preview message.
  const small = { canvas: document.createElement("canvas"), image: null, reduction: 1 };
  const quality = element("div", "lbx-quality", area);
  quality.hidden = true;
  quality.textContent = "PREVIEW: reduced while moving";
  quality.title = "Lower resolution; the lossless image follows when you stop";
  // Slices that could not be decoded (kernel trait `missing_slices`): blank in
  // place. Over them a banner says so, in words, and measuring is refused.
  const missingBox = element("div", "lbx-missing", area);
  missingBox.setAttribute("role", "alert");
  missingBox.hidden = true;
  const missingText = element("div", "lbx-missing-text", missingBox);
  const refusedText = element("div", "lbx-missing-refused", missingBox);
  refusedText.hidden = true;
  let missing = new Set(model.get("missing_slices") || []);
  // The series' alerts (kernel trait `alerts`): a line above the image, set
  // when the trait changes, never per frame. Text only, never HTML.
  alertBox.setAttribute("role", "alert");
  const alertLine = element("button", "lbx-alerts-line", alertBox);
  alertLine.type = "button";
  alertLine.setAttribute("aria-expanded", "false");
  const alertDetail = element("div", "lbx-alerts-detail", area);
  alertDetail.hidden = true;
  function showAlertDetail(open) {
    alertDetail.hidden = !open;
    alertLine.setAttribute("aria-expanded", String(open));
  }
  function showAlerts() {
    const alerts = model.get("alerts") || [];
    // A comparison pane without alerts keeps the line's room (invisible), so
    // that both images are drawn at one scale.
    alertBox.hidden = alerts.length === 0 && !model.get("keep_warning_room");
    alertBox.classList.toggle("lbx-alerts-empty", alerts.length === 0);
    setData("alerts", String(alerts.length));
    alertLine.textContent = alerts.length
      ? "⚠ " + alerts.map((a) => a.text).join(" · ") : "\u00a0";
    alertLine.title = alerts.length ? alerts.map((a) => a.text + ": " + a.detail)
      .join("\n\n") + "\n\nClick for the details." : "";
    alertDetail.replaceChildren();
    for (const alert of alerts) {
      element("div", "lbx-alert-title", alertDetail).textContent = alert.text;
      element("div", "lbx-alert-notes", alertDetail).textContent = alert.detail;
    }
    if (!alerts.length) showAlertDetail(false);
  }
  alertLine.addEventListener("click", () => showAlertDetail(alertDetail.hidden));
  // Its keys are the button's, not the viewer's (Space would start the cine).
  alertLine.addEventListener("keydown", (event) => {
    if (event.key === "Escape") showAlertDetail(false);
    event.stopPropagation();
  });
  alertDetail.addEventListener("click", () => showAlertDetail(false));
  model.on("change:alerts", showAlerts);
  model.on("change:keep_warning_room", () => {
    showAlerts();
    markSlider();
  });
  showAlerts();
  const lutCache = makeLutCache();
  const viewId = Math.random().toString(36).slice(2);
  let draws = 0;
  let pan = [0, 0];
  let pending = false;
  let transform = new DOMMatrix();
  let draft = null; // measurement being drawn: { tool, points, hover }
  let lastPeer = null; // last slice message from a linked viewer
  let addOn = null; // objects drawn over the image (overlays.js), if shipped
  // The slice painted last. It trails the wanted slice (local.index) by at most one
  // step: when two wheel notches land in one display frame, the second is painted
  // in the next frame instead of being skipped, so scrolling at up to one notch per
  // frame shows every slice.
  let shown = null;
  let inputs = []; // [slice wanted, event time stamp] not yet painted
  let stillTimer = null;
  let lastTransform = "";
  // The view's CSS size, kept by a ResizeObserver so drawing never forces a layout.
  let areaSize = [area.clientWidth, area.clientHeight];
  // The view's own state is `local`; the synced traits follow it. The kernel hears
  // of an interaction once the user has paused for SYNC_STILL_MS, and at least
  // every SYNC_EVERY_MS during a long one; the last state always arrives. Each
  // message makes the kernel busy, echo and go idle, and JupyterLab redraws its
  // kernel status for each of these: with a message every 100 ms per viewer, that
  // took 7-15 % of the page's main thread while two linked viewers scrolled.
  const local = { index: model.get("slice_index"), center: model.get("window_center"),
    width: model.get("window_width") };
  let syncTimer = null;
  let syncDue = null; // latest time the pending state must be sent
  function saveSoon() {
    const now = performance.now();
    if (syncDue === null) syncDue = now + SYNC_EVERY_MS;
    if (syncTimer !== null) clearTimeout(syncTimer);
    const wait = Math.max(0, Math.min(SYNC_STILL_MS, syncDue - now));
    syncTimer = setTimeout(saveNow, wait);
  }
  function saveNow() {
    if (syncTimer !== null) clearTimeout(syncTimer);
    syncTimer = null;
    syncDue = null;
    model.set({ slice_index: local.index, window_center: local.center,
      window_width: local.width });
    model.save_changes();
  }
  // A change from the kernel (not our own, which is still pending) is adopted.
  for (const [trait, key] of [["slice_index", "index"], ["window_center", "center"],
    ["window_width", "width"]]) {
    model.on("change:" + trait, () => {
      if (syncTimer === null) local[key] = model.get(trait);
      requestDraw();
    });
  }
  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }
  function setData(key, value) {
    if (root.dataset[key] !== value) root.dataset[key] = value;
  }
  const latencies = [];
  root.lightboxStats = { latencies, paints: [] };

  // Window `frame` into the target's pixels, unless they already hold it windowed
  // so: a pan, a zoom, a measurement being drawn or an overlay toggled repaints the
  // view without windowing the whole frame again.
  // A presentation state's VOI LUT table, per-image window or Presentation LUT
  // (the add-on, overlays.js) takes the place of the viewer's window where it
  // applies; `display` is null otherwise.
  function paintNative(frame, target, index) {
    const fn = model.get("window_function");
    const invert = model.get("invert");
    const display = addOn && addOn.display
      ? addOn.display(index, fn, local.center, local.width, invert) : null;
    const key = display ? display.key
      : [fn, local.center, local.width, invert].join("/");
    const held = target.held;
    if (held && held.frame === frame && held.key === key) return;
    if (display) {
      display.paint(target.image.data, frame);
    } else {
      windowInto(target.image.data, frame, fn, local.center, local.width, invert,
        lutCache);
    }
    target.context.putImageData(target.image, 0, 0);
    target.held = { frame, key };
  }
  const full = { canvas: native, context: nativeContext, image, held: null };

  function quarterTurns() {
    return (((model.get("rotation") / 90) % 4) + 4) % 4;
  }

  // Display size of one image pixel in CSS pixels along columns (x) and rows (y),
  // keeping the true aspect ratio from (0028,0030) Pixel Spacing.
  function pixelScale() {
    const [rowSpacing, columnSpacing] = model.get("pixel_spacing_mm");
    let widthMm = columns * columnSpacing;
    let heightMm = rows * rowSpacing;
    if (quarterTurns() % 2 === 1) [widthMm, heightMm] = [heightMm, widthMm];
    const available = [Math.max(1, areaSize[0]), Math.max(1, areaSize[1])];
    let mmToCss = Math.min(available[0] / widthMm, available[1] / heightMm);
    const zoom = model.get("zoom");
    if (zoom > 0) mmToCss = zoom / Math.min(columnSpacing, rowSpacing);
    return { x: mmToCss * columnSpacing, y: mmToCss * rowSpacing, mmToCss, available };
  }

  // Image (column, row) to CSS pixels of the view: flip, then rotate clockwise, then
  // centre and pan. Orientation markers follow the same order (kernel side).
  function viewTransform(s) {
    const m = new DOMMatrix();
    m.translateSelf(s.available[0] / 2 + pan[0], s.available[1] / 2 + pan[1]);
    m.rotateSelf(model.get("rotation"));
    m.scaleSelf(model.get("flip_horizontal") ? -1 : 1, model.get("flip_vertical") ? -1 : 1);
    m.scaleSelf(s.x, s.y);
    m.translateSelf(-columns / 2, -rows / 2);
    return m;
  }

  function toImage(event) {
    const box = view.getBoundingClientRect();
    const point = transform.inverse().transformPoint(
      new DOMPoint(event.clientX - box.left, event.clientY - box.top));
    // (row, column) of the pixel grid, fractional; pixel centres at .5 in CSS space.
    return [point.y - 0.5, point.x - 0.5];
  }

  function toView(row, column) {
    const p = transform.transformPoint(new DOMPoint(column + 0.5, row + 0.5));
    return [p.x, p.y];
  }

  // One step towards the wanted slice per display frame when it is near, a jump
  // when it is far (slider, Home/End, PageDown, a fast wheel).
  function nextShown() {
    const wanted = local.index;
    if (shown === null || Math.abs(wanted - shown) <= 1) return wanted;
    return wanted - Math.sign(wanted - shown);
  }

  function draw() {
    const begin = performance.now();
    pending = false;
    const previous = shown;
    const index = nextShown();
    const frame = frames[index];
    const preview = frame ? undefined : previews[index];
    const ratio = window.devicePixelRatio || 1;
    const cssWidth = Math.max(1, Math.round(areaSize[0]));
    const cssHeight = Math.max(1, Math.round(areaSize[1]));
    if (view.width !== cssWidth * ratio || view.height !== cssHeight * ratio) {
      view.width = cssWidth * ratio;
      view.height = cssHeight * ratio;
    }
    // Opaque: the view is filled black first anyway, and an opaque layer spares
    // the compositor blending it over the page (measured: about 1 ms less CPU
    // per frame in software compositing).
    const context = view.getContext("2d", { alpha: false });
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.fillStyle = "#000";
    context.fillRect(0, 0, view.width, view.height);
    const s = pixelScale();
    transform = viewTransform(s);
    const painted = frame || preview;
    if (painted) {
      const device = new DOMMatrix().scaleSelf(ratio, ratio).multiplySelf(transform);
      context.save();
      context.setTransform(device);
      if (frame) {
        paintNative(frame, full, index);
        // Enlarged images show the true pixel grid; smoothing only when shrinking.
        context.imageSmoothingEnabled = s.x < 1 || s.y < 1;
        context.drawImage(native, 0, 0);
      } else {
        paintNative(preview, small, index);
        // The preview covers the image; its padded edge is clipped off.
        context.beginPath();
        context.rect(0, 0, columns, rows);
        context.clip();
        context.imageSmoothingEnabled = true;
        context.drawImage(small.canvas, 0, 0, small.canvas.width * small.reduction,
          small.canvas.height * small.reduction);
      }
      if (missing.has(index)) {
        // A dashed red frame round the blank image, drawn in screen pixels.
        context.setTransform(1, 0, 0, 1, 0, 0);
        const ends = [[0, 0], [columns, 0], [columns, rows], [0, rows]]
          .map(([x, y]) => device.transformPoint(new DOMPoint(x, y)));
        context.strokeStyle = "#ff5252";
        context.lineWidth = 3 * ratio;
        context.setLineDash([10 * ratio, 6 * ratio]);
        context.beginPath();
        ends.forEach((p, i) => (i ? context.lineTo(p.x, p.y)
          : context.moveTo(p.x, p.y)));
        context.closePath();
        context.stroke();
        context.setLineDash([]);
      }
      context.restore();
      if (addOn) addOn.draw(context, device, index, ratio);
      drawMeasurements(context, ratio, index);
      draws += 1;
      root.dataset.draws = String(draws);
      const matrix = JSON.stringify([device.a, device.b, device.c, device.d, device.e,
        device.f]);
      if (matrix !== lastTransform) {
        lastTransform = matrix;
        root.dataset.transform = matrix;
      }
      const now = performance.now();
      // [time, slice, tier, ms spent painting] for the benchmarks and tests.
      root.lightboxStats.paints.push([now, index, frame ? "lossless" : "preview",
        now - begin]);
      if (root.lightboxStats.paints.length > 5000) root.lightboxStats.paints.shift();
      recordLatencies(now, previous, index);
      shown = index;
    }
    if (quality.hidden !== !preview) quality.hidden = !preview;
    setData("quality", frame ? "lossless" : preview ? "preview" : "none");
    setData("sliceIndex", String(index));
    setData("painted", painted ? "true" : "false");
    setData("windowCenter", String(local.center));
    setData("windowWidth", String(local.width));
    showMissing(index);
    writeOverlay(s, index, Boolean(painted));
    // The wanted slice is one step further: paint it in the next frame.
    if (painted && index !== local.index) requestDraw();
  }

  // Input-to-paint time of every input this paint reached (its slice, or past it).
  function recordLatencies(now, previous, index) {
    if (!inputs.length) return;
    const caughtUp = index === local.index;
    const low = Math.min(previous === null ? index : previous, index);
    const high = Math.max(previous === null ? index : previous, index);
    const waiting = [];
    for (const [wanted, time] of inputs) {
      if (caughtUp || (wanted >= low && wanted <= high)) {
        latencies.push(now - time);
      } else {
        waiting.push([wanted, time]);
      }
    }
    inputs = waiting;
    if (latencies.length > 5000) latencies.splice(0, latencies.length - 5000);
  }

  function requestDraw(event) {
    if (event && event.timeStamp !== undefined) inputs.push([local.index, event.timeStamp]);
    if (!pending) {
      pending = true;
      requestAnimationFrame(draw);
    }
  }

  function drawMeasurements(context, ratio, index) {
    if (labels.firstChild) labels.replaceChildren();
    const shapes = (model.get("measurements") || [])
      .filter((m) => m.slice_index === index);
    if (draft && draft.points.length) {
      shapes.push({ tool: draft.tool, points: [...draft.points, draft.hover]
        .filter(Boolean), text: "", draft: true });
    }
    context.lineWidth = 1.5 * ratio;
    for (const shape of shapes) {
      const points = shape.points.map(([r, c]) => toView(r, c));
      context.strokeStyle = shape.draft ? "#ffd54a" : "#7fff7f";
      context.beginPath();
      if (shape.tool === "region" && points.length === 2) {
        const [[x0, y0], [x1, y1]] = points;
        context.ellipse((x0 + x1) / 2 * ratio, (y0 + y1) / 2 * ratio,
          Math.abs(x1 - x0) / 2 * ratio, Math.abs(y1 - y0) / 2 * ratio, 0, 0, 2 * Math.PI);
      } else {
        points.forEach(([x, y], i) => (i ? context.lineTo(x * ratio, y * ratio)
          : context.moveTo(x * ratio, y * ratio)));
      }
      context.stroke();
      if (shape.text) {
        const label = element("div", "lbx-label lbx-measure-label", labels);
        const [x, y] = points[points.length - 1];
        label.style.left = x + 8 + "px";
        label.style.top = y + 4 + "px";
        label.textContent = shape.text;
      }
    }
  }

  // Move the slider's thumb to `index`, at most every SLIDER_EVERY_MS while the
  // slice keeps changing and then to where it stopped. Each move of a native range
  // input has the browser re-layerize the whole page (JupyterLab's included: about
  // 1.2 ms of the main thread a frame, measured), while the image and its
  // "Im n/N" line, which follow every frame, are what the reader watches.
  let sliderAt = -Infinity;
  let sliderTimer = null;
  function showOnSlider(index) {
    if (slider.value === String(index)) return;
    const now = performance.now();
    if (now - sliderAt >= SLIDER_EVERY_MS) {
      slider.value = String(index);
      sliderAt = now;
    } else if (sliderTimer === null) {
      sliderTimer = setTimeout(() => {
        sliderTimer = null;
        if (shown !== null) showOnSlider(shown);
      }, SLIDER_EVERY_MS - (now - sliderAt));
    }
  }

  // The banner over a slice that could not be decoded; text only, never HTML.
  let refusedAt = null; // the slice a refusal was said on
  function showMissing(index) {
    const isMissing = missing.has(index);
    setData("missingSlice", String(isMissing));
    if (missingBox.hidden !== !isMissing) missingBox.hidden = !isMissing;
    if (!isMissing) {
      refusedAt = null;
      return;
    }
    setText(missingText, "Im " + (index + 1) + "/" + count + " could not be decoded: "
      + "it is blank, not the patient's image.\nDo not read it, and do not measure "
      + "on or across it.");
    // A refusal is said on its slice only, until the reader scrolls away.
    if (refusedAt !== index) refusedAt = null;
    const refused = refusedAt === index;
    if (refusedText.hidden !== !refused) refusedText.hidden = !refused;
  }
  function refuse(index, text) {
    refusedAt = index;
    setText(refusedText, text);
    requestDraw();
  }

  // A red mark above the slider at each slice that could not be decoded.
  const marks = element("div", "lbx-missing-marks", footer);
  function markSlider() {
    marks.replaceChildren();
    marks.hidden = missing.size === 0 && !model.get("keep_warning_room");
    const names = [];
    for (const s of [...missing].sort((a, b) => a - b)) {
      const mark = element("div", "lbx-missing-mark", marks);
      mark.style.left = (count > 1 ? 100 * s / (count - 1) : 50) + "%";
      names.push("Im " + (s + 1));
    }
    marks.title = names.length ? "Could not be decoded: " + names.join(", ") : "";
  }
  model.on("change:missing_slices", () => {
    missing = new Set(model.get("missing_slices") || []);
    markSlider();
    requestDraw();
  });

  function writeOverlay(s, index, painted) {
    const overlay = model.get("overlay") || {};
    const positions = model.get("slice_positions_mm") || [];
    const unit = model.get("value_unit");
    // textContent, never innerHTML: names and descriptions come from DICOM files.
    setText(corners.tl, [overlay.patient, overlay.study, overlay.series]
      .filter(Boolean).join("\n"));
    const imageLine = "Im " + (index + 1) + "/" + count
      + (missing.has(index) ? "  NOT DECODED" : "");
    const position = positions.length > index
      ? "Pos " + positions[index].toFixed(1) + " mm" : "";
    // Slice Thickness, and the spacing where it differs (worded by the kernel).
    setText(corners.tr, [overlay.institution, imageLine, position,
      model.get("thickness_text")].filter(Boolean).join("\n"));
    const fn = model.get("window_function");
    let windowText = "W " + Math.round(local.width) + " C "
      + Math.round(local.center) + (unit ? " " + unit : "")
      + (fn !== "LINEAR" ? " " + fn : "");
    // A presentation state's table or per-image window, named instead (add-on).
    if (addOn && addOn.voiText) windowText = addOn.voiText(index, windowText);
    setText(corners.bl, windowText + (model.get("invert") ? "  inverted" : ""));
    const flips = (model.get("flip_horizontal") ? " flipH" : "")
      + (model.get("flip_vertical") ? " flipV" : "");
    setText(corners.br, "Zoom " + (s.mmToCss * Math.min(...model.get("pixel_spacing_mm")))
      .toFixed(2) + "x" + (model.get("rotation") ? " rot " + model.get("rotation") : "")
      + flips + (painted ? "" : "\nloading..."));
    const orientation = model.get("orientation") || {};
    for (const edge of Object.keys(markers)) {
      setText(markers[edge], orientation[edge] || "");
    }
    // A scale bar of a round length near a fifth of the view.
    const target = s.available[0] / 5 / s.mmToCss;
    const nice = [1, 2, 5, 10, 20, 50, 100, 200, 500].find((mm) => mm >= target) || 500;
    const barWidth = nice * s.mmToCss + "px";
    if (scale.style.width !== barWidth) scale.style.width = barWidth;
    setText(scaleLabel, nice + " mm");
    // Only what changed is written: each DOM write costs a style pass in the frame.
    if (scaleLabel.dataset.mm !== String(nice)) scaleLabel.dataset.mm = String(nice);
    if (slider.max !== String(count - 1)) slider.max = String(count - 1);
    showOnSlider(index);
    const fps = String(model.get("cine_fps"));
    if (document.activeElement !== fpsInput && fpsInput.value !== fps) fpsInput.value = fps;
    const pressed = (button, on) => {
      if (button.getAttribute("aria-pressed") !== String(on)) {
        button.setAttribute("aria-pressed", String(on));
      }
    };
    pressed(playButton, model.get("playing"));
    for (const [name, button] of toolButtons) pressed(button, model.get("tool") === name);
  }

  function sliceMessage(index) {
    const positions = model.get("slice_positions_mm") || [];
    return {
      group: model.get("sync_group"), sender: viewId, kind: "slice",
      frame: model.get("frame_of_reference_uid"),
      groupIndex: index - model.get("sync_offset_slices"),
      groupPosition: positions.length > index
        ? positions[index] - model.get("sync_offset_mm") : null,
    };
  }

  function setSlice(index, event, options = {}) {
    const next = Math.min(count - 1, Math.max(0, index));
    if (next === local.index) return;
    local.index = next;
    saveSoon();
    // Nothing at all to show: ask now. A preview to show: ask once the user stops.
    if (!frames[next] && !previews[next]) askLossless(next, next + 1);
    stillSoon();
    requestDraw(event);
    if (options.publish !== false && model.get("sync_group")) publish(sliceMessage(next));
  }

  function setWindow(center, width, event) {
    // The reader's window replaces a presentation state's per-image one (add-on).
    if (addOn && addOn.releaseVoi) addOn.releaseVoi();
    local.center = center;
    local.width = Math.max(model.get("window_function") === "LINEAR" ? 1 : 1e-3, width);
    saveSoon();
    requestDraw(event);
    if (model.get("sync_group")) {
      publish({ group: model.get("sync_group"), sender: viewId, kind: "window",
        center, width });
    }
  }

  // A linked viewer moved: follow by patient position within one Frame of
  // Reference, else by slice number, each plus this viewer's own offset.
  const unsubscribe = subscribe((message) => {
    if (!message.group || message.group !== model.get("sync_group")
        || message.sender === viewId) return;
    if (message.kind === "window") {
      local.center = message.center;
      local.width = message.width;
      saveSoon();
      requestDraw();
      return;
    }
    lastPeer = message;
    const positions = model.get("slice_positions_mm") || [];
    const frame = model.get("frame_of_reference_uid");
    let target;
    if (frame && frame === message.frame && message.groupPosition !== null
        && positions.length === count) {
      const wanted = message.groupPosition + model.get("sync_offset_mm");
      let best = 0;
      for (let i = 1; i < count; i++) {
        if (Math.abs(positions[i] - wanted) < Math.abs(positions[best] - wanted)) best = i;
      }
      target = best;
    } else {
      target = Math.round(message.groupIndex + model.get("sync_offset_slices"));
    }
    root.dataset.syncedBy = frame && frame === message.frame ? "position" : "offset";
    setSlice(target, undefined, { publish: false });
  });

  // Shift + wheel scrolls this viewer alone and keeps the new offset to its peers.
  function scrollAlone(step) {
    setSlice(local.index + step, undefined, { publish: false });
    if (!lastPeer) return;
    const index = local.index;
    const positions = model.get("slice_positions_mm") || [];
    const frame = model.get("frame_of_reference_uid");
    if (frame && frame === lastPeer.frame && lastPeer.groupPosition !== null
        && positions.length === count) {
      model.set("sync_offset_mm", positions[index] - lastPeer.groupPosition);
    } else {
      model.set("sync_offset_slices", index - lastPeer.groupIndex);
    }
    model.save_changes();
  }

  // Ask for the lossless slices missing in [start, stop), as contiguous ranges.
  function askLossless(start, stop) {
    let from = null;
    for (let s = start; s <= stop; s++) {
      const missing = s < stop && !frames[s] && !requested.has(s);
      if (missing && from === null) from = s;
      if (!missing && from !== null) {
        model.send({ type: "need", start: from, stop: s });
        for (let k = from; k < s; k++) requested.add(k);
        from = null;
      }
    }
  }

  // The window of lossless slices around `index` (stack.lossless_window in Python).
  function losslessWindow(index) {
    const size = Math.min(Math.max(1, model.get("lossless_slices")), count);
    const start = Math.min(Math.max(0, index - Math.floor((size - 1) / 2)), count - size);
    return [start, start + size];
  }

  function stillSoon() {
    if (stillTimer !== null) clearTimeout(stillTimer);
    stillTimer = setTimeout(() => {
      stillTimer = null;
      const [start, stop] = losslessWindow(local.index);
      // The slice on screen first, then the rest of its window.
      askLossless(local.index, local.index + 1);
      askLossless(start, stop);
    }, model.get("lossless_after_ms"));
  }

  // Keep at most `lossless_slices` lossless frames: drop those farthest from the
  // wanted slice first (their previews stay).
  function evictLossless() {
    const limit = Math.max(1, model.get("lossless_slices"));
    if (losslessHeld <= limit) return;
    const [start, stop] = losslessWindow(local.index);
    const far = [];
    for (let s = 0; s < count; s++) {
      if (frames[s] && (s < start || s >= stop)) far.push(s);
    }
    far.sort((a, b) => Math.abs(b - local.index) - Math.abs(a - local.index));
    for (const s of far) {
      if (losslessHeld <= limit) break;
      frames[s] = undefined;
      losslessHeld -= 1;
    }
  }

  function typed(message, buffer) {
    // The buffer may be a view into a larger one: copy out just its bytes.
    const bytes = buffer.buffer.slice(buffer.byteOffset,
      buffer.byteOffset + buffer.byteLength);
    return new (message.dtype === "int16" ? Int16Array : Float32Array)(bytes);
  }

  model.on("msg:custom", (message, buffers) => {
    if (message.type === "refused") {
      refuse(local.index, String(message.text || ""));
      return;
    }
    if (message.type === "previews") {
      const all = typed(message, buffers[0]);
      if (!small.image) {
        small.canvas.width = message.columns;
        small.canvas.height = message.rows;
        small.context = small.canvas.getContext("2d");
        small.image = small.context.createImageData(message.columns, message.rows);
        small.reduction = message.reduction;
      }
      const size = message.rows * message.columns;
      for (let s = message.start; s < message.stop; s++) {
        const offset = (s - message.start) * size;
        previews[s] = all.subarray(offset, offset + size);
      }
      root.dataset.previewsLoaded = String(previews.filter(Boolean).length);
      if (!frames[local.index] && local.index >= message.start
          && local.index < message.stop) requestDraw();
      return;
    }
    if (message.type !== "slices") return;
    const all = typed(message, buffers[0]);
    const size = rows * columns;
    for (let s = message.start; s < message.stop; s++) {
      const offset = (s - message.start) * size;
      if (!frames[s]) losslessHeld += 1;
      frames[s] = all.subarray(offset, offset + size);
      requested.delete(s);
    }
    evictLossless();
    root.dataset.slicesLoaded = String(losslessHeld);
    if (local.index >= message.start
        && local.index < message.stop) requestDraw();
  });

  for (const name of ["window_function", "invert", "zoom", "overlay", "rotation", "flip_horizontal", "flip_vertical",
    "orientation", "measurements", "tool", "cine_fps", "playing", "thickness_text"]) {
    model.on("change:" + name, () => requestDraw());
  }

  // Wheel scrolls slices; with Ctrl it zooms; with Shift it scrolls this viewer
  // alone (a comparison keeps the new offset).
  root.addEventListener("wheel", (event) => {
    event.preventDefault();
    const step = event.deltaY > 0 ? 1 : -1;
    if (event.ctrlKey) {
      zoomBy(event.deltaY < 0 ? 1.1 : 0.9);
    } else if (event.shiftKey) {
      scrollAlone(step);
    } else {
      setSlice(local.index + step, event);
    }
  }, { passive: false });

  function currentZoom() {
    return pixelScale().mmToCss * Math.min(...model.get("pixel_spacing_mm"));
  }
  function zoomBy(factor, from) {
    // Drawn at once (change:zoom); the kernel hears of it with the other state.
    model.set("zoom", Math.min(16, Math.max(0.1, (from || currentZoom()) * factor)));
    saveSoon();
  }
  function toggle(name) {
    model.set(name, !model.get(name));
    model.save_changes();
  }
  // The flips act on the stored image before the turn; after a quarter turn the
  // screen's left-right mirror is the image's top-bottom one.
  function flipOnScreen(direction) {
    const swap = quarterTurns() % 2 === 1;
    const horizontal = (direction === "horizontal") !== swap;
    toggle(horizontal ? "flip_horizontal" : "flip_vertical");
  }
  function rotate(degrees) {
    model.set("rotation", (((model.get("rotation") + degrees) % 360) + 360) % 360);
    model.save_changes();
  }

  root.addEventListener("keydown", (event) => {
    const steps = { ArrowDown: 1, ArrowRight: 1, PageDown: 10, ArrowUp: -1, ArrowLeft: -1,
      PageUp: -10 };
    const actions = {
      Home: () => setSlice(0, event), End: () => setSlice(count - 1, event),
      i: () => toggle("invert"), r: () => rotate(90), h: () => flipOnScreen("horizontal"),
      v: () => flipOnScreen("vertical"), " ": () => toggle("playing"), f: () => fit(),
      Escape: () => { draft = null; requestDraw(); },
    };
    if (event.key in steps) {
      event.preventDefault();
      setSlice(local.index + steps[event.key], event);
    } else if (event.key in actions) {
      event.preventDefault();
      actions[event.key]();
    }
  });

  // Cine: advance at cine_fps, looping, paced by animation frames.
  let cineLast = null;
  function cine(time) {
    if (!model.get("playing")) {
      cineLast = null;
      return;
    }
    const interval = 1000 / Math.max(1, model.get("cine_fps"));
    if (cineLast === null) cineLast = time;
    if (time - cineLast >= interval) {
      cineLast += interval * Math.floor((time - cineLast) / interval);
      const next = (local.index + 1) % count;
      setSlice(next);
    }
    requestAnimationFrame(cine);
  }
  model.on("change:playing", () => { if (model.get("playing")) requestAnimationFrame(cine); });

  // Pointer gestures. Mouse, tool "auto": the left button drags the window
  // (horizontal = width, vertical = center), the right button or Shift pans. Touch,
  // tool "auto": one finger swipes through slices; two fingers pinch to zoom and move
  // to pan. The measurement tools place points in image coordinates; the kernel
  // measures them on the true voxels.
  const pointers = new Map();
  let gesture = null;
  view.addEventListener("contextmenu", (event) => event.preventDefault());
  view.addEventListener("pointerdown", (event) => {
    root.focus({ preventScroll: true });
    view.setPointerCapture(event.pointerId);
    pointers.set(event.pointerId, [event.clientX, event.clientY]);
    const tool = model.get("tool");
    if (pointers.size === 2) {
      draft = null;
      const [a, b] = [...pointers.values()];
      gesture = { kind: "pinch", distance: Math.hypot(a[0] - b[0], a[1] - b[1]),
        zoom: currentZoom(), middle: [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2],
        pan: [...pan] };
      return;
    }
    if (tool in MEASURE_POINTS && missing.has(local.index)) {
      // Nothing true to measure on a blank slice; the banner says so.
      draft = null;
      gesture = null;
      refuse(local.index, "Not measured: this slice holds no image.");
      return;
    }
    if (tool in MEASURE_POINTS) {
      const point = toImage(event);
      if (!draft || draft.tool !== tool) draft = { tool, points: [] };
      draft.points.push(point);
      draft.hover = point;
      gesture = { kind: "measure" };
      maybeFinish(false);
      requestDraw(event);
      return;
    }
    let kind = tool;
    if (tool === "auto") {
      kind = event.pointerType === "touch" ? "scroll"
        : event.button === 2 || event.shiftKey ? "pan" : "window";
    }
    gesture = { kind, x: event.clientX, y: event.clientY, pan: [...pan],
      center: local.center, width: local.width,
      slice: local.index, zoom: currentZoom() };
  });

  function maybeFinish(released) {
    const needed = MEASURE_POINTS[draft.tool];
    // Length and ROI are one drag (press, release); an angle is three clicks.
    const points = released && draft.tool !== "angle" ? [...draft.points, draft.hover]
      : draft.points;
    if (points.length < needed) return;
    model.send({ type: "measure", tool: draft.tool, slice_index: local.index,
      points: points.slice(0, needed) });
    draft = null;
  }

  view.addEventListener("pointermove", (event) => {
    if (draft && draft.tool === "angle" && !pointers.has(event.pointerId)) {
      draft.hover = toImage(event);
      requestDraw(event);
      return;
    }
    if (!pointers.has(event.pointerId) || !gesture) return;
    pointers.set(event.pointerId, [event.clientX, event.clientY]);
    if (gesture.kind === "pinch") {
      if (pointers.size !== 2) return;
      const [a, b] = [...pointers.values()];
      const distance = Math.hypot(a[0] - b[0], a[1] - b[1]);
      const middle = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
      pan = [gesture.pan[0] + middle[0] - gesture.middle[0],
        gesture.pan[1] + middle[1] - gesture.middle[1]];
      zoomBy(distance / Math.max(1, gesture.distance), gesture.zoom);
      requestDraw(event);
      return;
    }
    if (gesture.kind === "measure") {
      if (draft) draft.hover = toImage(event);
      requestDraw(event);
      return;
    }
    const dx = event.clientX - gesture.x;
    const dy = event.clientY - gesture.y;
    if (gesture.kind === "pan") {
      pan = [gesture.pan[0] + dx, gesture.pan[1] + dy];
      requestDraw(event);
    } else if (gesture.kind === "zoom") {
      zoomBy(Math.exp(-dy / 200), gesture.zoom);
    } else if (gesture.kind === "scroll") {
      setSlice(gesture.slice + Math.round(dy / 12), event);
    } else if (gesture.kind === "window") {
      // Sensitivity follows the width, so narrow brain windows stay controllable.
      const step = Math.max(1, gesture.width / 256);
      setWindow(gesture.center + dy * step, gesture.width + dx * step, event);
    }
  });
  const release = (event) => {
    pointers.delete(event.pointerId);
    if (gesture && gesture.kind === "measure" && draft && event.type === "pointerup") {
      draft.hover = toImage(event);
      const moved = draft.points.length === 1 && Math.hypot(
        draft.hover[0] - draft.points[0][0], draft.hover[1] - draft.points[0][1]) > 1;
      if (draft.tool !== "angle" && moved) maybeFinish(true);
      requestDraw(event);
    }
    if (pointers.size === 0) gesture = null;
  };
  view.addEventListener("pointerup", release);
  view.addEventListener("pointercancel", release);

  function toolButton(label, onClick, title) {
    const button = element("button", "lbx-button", bar);
    button.type = "button";
    button.textContent = label;
    if (title) button.title = title;
    button.addEventListener("click", (event) => { onClick(event); root.focus(); });
    return button;
  }

  const presetSelect = element("select", "lbx-presets", bar);
  presetSelect.setAttribute("aria-label", "Window preset");
  const placeholder = element("option", "", presetSelect);
  placeholder.textContent = "Window…";
  placeholder.value = "";
  (model.get("presets") || []).forEach(([name, center, width, fn], i) => {
    const option = element("option", "", presetSelect);
    option.value = String(i);
    option.textContent = name + " (" + width + "/" + center + ")";
  });
  presetSelect.addEventListener("change", () => {
    const preset = (model.get("presets") || [])[Number(presetSelect.value)];
    presetSelect.value = "";
    if (!preset) return;
    model.set("window_function", preset[3] || "LINEAR");
    setWindow(preset[1], preset[2]);
  });
  const toolButtons = STACK_TOOLS.map(([name, label]) => [name, toolButton(label, () => {
    draft = null;
    model.set("tool", name);
    model.save_changes();
  }, "Tool: " + name)]);
  toolButton("Clear", () => { model.send({ type: "clear_measurements" }); },
    "Remove the measurements");
  function fit() { pan = [0, 0]; model.set("zoom", 0); model.save_changes(); requestDraw(); }
  toolButton("Fit", fit);
  toolButton("1:1", () => {
    pan = [0, 0];
    model.set("zoom", 1 / (window.devicePixelRatio || 1));
    model.save_changes();
  }, "One image pixel to one screen pixel");
  toolButton("Invert", () => toggle("invert"));
  toolButton("Rotate", () => rotate(90), "Rotate 90 degrees clockwise");
  toolButton("Flip H", () => flipOnScreen("horizontal"), "Mirror left to right");
  toolButton("Flip V", () => flipOnScreen("vertical"), "Mirror top to bottom");
  const playButton = toolButton("Play", () => toggle("playing"), "Cine loop");
  playButton.classList.add("lbx-play");
  const fpsInput = element("input", "lbx-fps", bar);
  fpsInput.type = "number";
  fpsInput.min = "1";
  fpsInput.max = "120";
  fpsInput.title = "Cine frames per second";
  fpsInput.setAttribute("aria-label", "Cine frames per second");
  fpsInput.addEventListener("change", () => {
    model.set("cine_fps", Math.max(1, Math.min(120, Number(fpsInput.value) || 1)));
    model.save_changes();
  });
  const moreButton = toolButton("More ▾", () => openMenu(menu.hidden), "More tools");
  moreButton.classList.add("lbx-more");
  moreButton.setAttribute("aria-label", "More tools");
  moreButton.setAttribute("aria-haspopup", "true");
  moreButton.setAttribute("aria-expanded", "false");
  const fitToolbar = collapsingToolbar(bar, menu, moreButton, footer, {
    pinned: [presetSelect, toolButtons[0][1], toolButtons[1][1], byLabel("Fit")],
    // What goes into the menu first when the row is too narrow.
    collapseFirst: ["Flip V", "Flip H", "Rotate", "Invert", "1:1", "Clear", "Zoom",
      "Pan", "Angle"].map(byLabel).concat([fpsInput, playButton]),
  });
  function byLabel(label) {
    return [...bar.querySelectorAll("button")].find((b) => b.textContent === label);
  }
  function openMenu(open) {
    menu.hidden = !open;
    moreButton.setAttribute("aria-expanded", String(open));
    if (open) menu.style.bottom = footer.offsetHeight + "px";
  }
  // A tool chosen from the menu closes it; so does a press on the image.
  menu.addEventListener("click", (event) => {
    if (event.target.closest("button")) openMenu(false);
  });
  view.addEventListener("pointerdown", () => openMenu(false));
  const slider = element("input", "lbx-slider", footer);
  slider.type = "range";
  slider.min = "0";
  slider.setAttribute("aria-label", "Slice");
  slider.addEventListener("input", (event) => setSlice(Number(slider.value), event));
  markSlider();

  // Widgets that ship overlays.js (AnnotatedStackViewer) draw SEG/RTSTRUCT layers,
  // key images and presentation states through this add-on.
  if (typeof stackAddOn === "function") {
    addOn = stackAddOn({ model, root, area, bar, footer, requestDraw, setSlice,
      setPan: (next) => { pan = next; requestDraw(); } });
  }

  const observer = new ResizeObserver((entries) => {
    for (const entry of entries) {
      if (entry.target === area) {
        areaSize = [entry.contentRect.width, entry.contentRect.height];
        requestDraw();
      } else {
        fitToolbar();
      }
    }
  });
  observer.observe(area);
  observer.observe(footer);
  requestDraw();
  if (model.get("playing")) requestAnimationFrame(cine);
  // A series still streaming in (kernel trait `loading`, set by viewerlib.open):
  // a bar and "n of m images" at the top; on failure the kernel's text saying
  // what happened and what to do. Text only, never HTML.
  injectStyle("lbx-loading-style", `
.lbx-loading { position: absolute; left: 0; right: 0; top: 0; pointer-events: none;
  padding: 0 8px; font-size: 12px; text-align: center; color: #e8e8e8;
  text-shadow: 0 0 3px #000; }
.lbx-loading-track { height: 3px; background: rgba(255,255,255,.15); margin: 0 -8px; }
.lbx-loading-text { margin-top: 18px; }
.lbx-loading-fill { height: 100%; width: 0; background: #4aa3ff; }
.lbx-loading[data-state="failed"] { background: rgba(120,20,20,.9); padding: 6px 8px;
  pointer-events: auto; white-space: pre-wrap; text-align: left; }
.lbx-loading[data-state="failed"] .lbx-loading-track { display: none; }
.lbx-loading[data-state="failed"] .lbx-loading-text { margin-top: 0; }
`);
  const loadingBox = element("div", "lbx-loading", area);
  const loadingTrack = element("div", "lbx-loading-track", loadingBox);
  const loadingFill = element("div", "lbx-loading-fill", loadingTrack);
  const loadingText = element("div", "lbx-loading-text", loadingBox);
  loadingBox.setAttribute("role", "status");
  function showLoading() {
    const state = model.get("loading") || {};
    const total = Math.max(1, state.total || count);
    root.dataset.loading = state.state || "";
    root.dataset.loadingReceived = String(state.received || 0);
    loadingBox.dataset.state = state.state || "";
    loadingBox.hidden = !state.state || state.state === "complete";
    loadingFill.style.width = (100 * (state.received || 0) / total).toFixed(1) + "%";
    loadingText.textContent = state.state === "failed" ? String(state.message || "")
      : "Loading " + (state.received || 0) + " of " + total + " images";
  }
  model.on("change:loading", showLoading);
  showLoading();
  model.send({ type: "ready", first: local.index });

  return () => {
    observer.disconnect();
    fitToolbar.disconnect();
    unsubscribe();
    // A state the kernel has not heard of yet is sent now, not lost, unless the
    // view goes because its model was closed (then there is no one to tell).
    if (syncTimer !== null) {
      try {
        saveNow();
      } catch (err) {
        syncTimer = null;
      }
    }
    if (sliderTimer !== null) clearTimeout(sliderTimer);
    if (stillTimer !== null) clearTimeout(stillTimer);
    frames.length = 0;
    previews.length = 0;
  };
}

// viewerlib.open lays a viewer out from the first image that arrives. When the series
// turns out otherwise (another slice count or order), the kernel bumps
// `layout_generation` and the view is drawn afresh from the model; the old drawing's
// listeners go with it.
function renderLaidOut({ model, el }) {
  let registered = [];
  const scoped = {
    get: (...args) => model.get(...args),
    set: (...args) => model.set(...args),
    save_changes: (...args) => model.save_changes(...args),
    send: (...args) => model.send(...args),
    off: (...args) => model.off(...args),
    on: (name, callback) => {
      registered.push([name, callback]);
      return model.on(name, callback);
    },
  };
  let cleanup = render({ model: scoped, el });
  let layout = model.get("layout_generation");
  // When the first image was painted (epoch ms), kept across relayouts for
  // bench/first_image.py, which compares it with the kernel's clock.
  const firstPaint = new MutationObserver(() => {
    if (el.dataset.firstPaint || !el.querySelector("[data-painted='true']")) return;
    el.dataset.firstPaint = String(performance.timeOrigin + performance.now());
    firstPaint.disconnect();
  });
  firstPaint.observe(el, { attributes: true, subtree: true,
    attributeFilter: ["data-painted"] });
  function teardown() {
    if (typeof cleanup === "function") cleanup();
    for (const [name, callback] of registered) model.off(name, callback);
    registered = [];
    el.replaceChildren();
  }
  function relayout() {
    if (model.get("layout_generation") === layout) return;
    layout = model.get("layout_generation");
    teardown();
    cleanup = render({ model: scoped, el });
  }
  model.on("change:layout_generation", relayout);
  return () => {
    firstPaint.disconnect();
    model.off("change:layout_generation", relayout);
    teardown();
  };
}

export default { render: renderLaidOut };
