// Front end of the stack viewer. The kernel sends modality values (int16 or float32)
// as binary buffers; this file windows them (voi.js), draws them on a canvas and
// turns wheel, keys, drags, touches and the toolbar into slice, window, zoom, pan,
// rotation and measurement events. Frames live only in this page's memory: nothing
// goes to browser storage. Every text from DICOM is set with textContent.

const STACK_CSS = `
.lbx-stack { display: flex; flex-direction: column; background: #000; color: #e8e8e8;
  user-select: none; font: 12px/1.35 system-ui, sans-serif; touch-action: none;
  outline: none; height: var(--lbx-height, 560px); min-height: 320px; overflow: hidden; }
.lbx-area { position: relative; flex: 1; min-height: 120px; overflow: hidden; }
.lbx-area canvas.lbx-view { position: absolute; left: 0; top: 0; width: 100%;
  height: 100%; image-rendering: pixelated; cursor: crosshair; touch-action: none; }
.lbx-corner { position: absolute; white-space: pre; pointer-events: none;
  text-shadow: 0 0 3px #000, 0 0 2px #000; }
.lbx-tl { top: 6px; left: 8px; } .lbx-tr { top: 6px; right: 8px; text-align: right; }
.lbx-bl { bottom: 6px; left: 8px; } .lbx-br { bottom: 6px; right: 8px; text-align: right; }
.lbx-marker { position: absolute; font-weight: 600; font-size: 14px; pointer-events: none;
  color: #ffd54a; text-shadow: 0 0 3px #000; }
.lbx-marker-left { left: 6px; top: 50%; } .lbx-marker-right { right: 6px; top: 50%; }
.lbx-marker-top { top: 4px; left: 50%; } .lbx-marker-bottom { bottom: 40px; left: 50%; }
.lbx-scale { position: absolute; bottom: 44px; right: 12%; height: 6px;
  border: 1px solid #e8e8e8; border-top: none; pointer-events: none; }
.lbx-scale-label { bottom: 52px; right: 12%; }
.lbx-label { position: absolute; white-space: pre; pointer-events: none; color: #7fff7f;
  font-size: 12px; text-shadow: 0 0 3px #000; }
.lbx-bar { display: flex; flex-wrap: wrap; gap: 3px; align-items: center;
  padding: 3px 6px; background: rgba(20,20,20,.95); }
.lbx-bar button, .lbx-bar select, .lbx-bar input[type=number] { background: #333;
  color: #eee; border: 1px solid #555; border-radius: 3px; font-size: 11px;
  padding: 1px 5px; cursor: pointer; min-height: 22px; }
.lbx-bar input[type=number] { width: 3.2em; }
.lbx-bar button[aria-pressed="true"] { background: #1e5a8c; }
.lbx-bar input[type=range] { flex: 1 1 100%; margin: 0; }
`;

const STACK_TOOLS = [["auto", "Auto"], ["window", "W/L"], ["pan", "Pan"],
  ["zoom", "Zoom"], ["distance", "Length"], ["angle", "Angle"], ["region", "ROI"]];
const MEASURE_POINTS = { distance: 2, angle: 3, region: 2 };

function render({ model, el }) {
  injectStyle("lbx-stack-style", STACK_CSS);
  const root = element("div", "lbx-stack", el);
  root.tabIndex = 0;
  root.setAttribute("role", "img");
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
  const bar = element("div", "lbx-bar", root);

  const rows = model.get("rows");
  const columns = model.get("columns");
  const count = model.get("number_of_slices");
  const frames = new Array(count);
  const native = document.createElement("canvas");
  native.width = columns;
  native.height = rows;
  const nativeContext = native.getContext("2d");
  const image = nativeContext.createImageData(columns, rows);
  const lutCache = makeLutCache();
  const viewId = Math.random().toString(36).slice(2);
  let draws = 0;
  let pan = [0, 0];
  let pending = false;
  let inputSince = null; // time stamp of the oldest input not yet painted
  let transform = new DOMMatrix();
  let draft = null; // measurement being drawn: { tool, points, hover }
  let lastPeer = null; // last slice message from a linked viewer
  // The view's CSS size, kept by a ResizeObserver so drawing never forces a layout.
  let areaSize = [area.clientWidth, area.clientHeight];
  // Interactions change the model at once; the kernel hears of them at most every
  // 100 ms (the last state always arrives), which keeps fast scrolling free of
  // per-event messages and their echoes.
  // The view's own state is `local`; the synced traits follow it.
  const local = { index: model.get("slice_index"), center: model.get("window_center"),
    width: model.get("window_width") };
  let syncTimer = null;
  function saveSoon() {
    if (syncTimer !== null) return;
    syncTimer = setTimeout(() => {
      syncTimer = null;
      model.set({ slice_index: local.index, window_center: local.center,
        window_width: local.width });
      model.save_changes();
    }, 100);
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
  const latencies = [];
  root.lightboxStats = { latencies, paints: [] };

  function paintNative(frame) {
    windowInto(image.data, frame, model.get("window_function"),
      local.center, local.width, model.get("invert"),
      lutCache);
    nativeContext.putImageData(image, 0, 0);
  }

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

  function draw() {
    pending = false;
    const index = local.index;
    const frame = frames[index];
    const ratio = window.devicePixelRatio || 1;
    const cssWidth = Math.max(1, Math.round(areaSize[0]));
    const cssHeight = Math.max(1, Math.round(areaSize[1]));
    if (view.width !== cssWidth * ratio || view.height !== cssHeight * ratio) {
      view.width = cssWidth * ratio;
      view.height = cssHeight * ratio;
    }
    const context = view.getContext("2d");
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.fillStyle = "#000";
    context.fillRect(0, 0, view.width, view.height);
    const s = pixelScale();
    transform = viewTransform(s);
    if (frame) {
      paintNative(frame);
      const device = new DOMMatrix().scaleSelf(ratio, ratio).multiplySelf(transform);
      context.setTransform(device);
      // Enlarged images show the true pixel grid; smoothing only when shrinking.
      context.imageSmoothingEnabled = s.x < 1 || s.y < 1;
      context.drawImage(native, 0, 0);
      context.setTransform(1, 0, 0, 1, 0, 0);
      drawMeasurements(context, ratio, index);
      draws += 1;
      root.dataset.draws = String(draws);
      root.dataset.transform = JSON.stringify([device.a, device.b, device.c, device.d,
        device.e, device.f]);
      const now = performance.now();
      root.lightboxStats.paints.push([now, index]);
      if (root.lightboxStats.paints.length > 5000) root.lightboxStats.paints.shift();
      if (inputSince !== null) {
        latencies.push(now - inputSince);
        if (latencies.length > 5000) latencies.shift();
        inputSince = null;
      }
    }
    root.dataset.sliceIndex = String(index);
    root.dataset.painted = frame ? "true" : "false";
    root.dataset.windowCenter = String(local.center);
    root.dataset.windowWidth = String(local.width);
    writeOverlay(s, index, Boolean(frame));
  }

  function requestDraw(event) {
    if (event && event.timeStamp !== undefined && inputSince === null) {
      inputSince = event.timeStamp;
    }
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

  function writeOverlay(s, index, painted) {
    const overlay = model.get("overlay") || {};
    const positions = model.get("slice_positions_mm") || [];
    const unit = model.get("value_unit");
    // textContent, never innerHTML: names and descriptions come from DICOM files.
    setText(corners.tl, [overlay.patient, overlay.study, overlay.series]
      .filter(Boolean).join("\n"));
    const imageLine = "Im " + (index + 1) + "/" + count;
    const position = positions.length > index
      ? "Pos " + positions[index].toFixed(1) + " mm" : "";
    const thickness = model.get("slice_thickness_mm");
    setText(corners.tr, [overlay.institution, imageLine, position,
      thickness ? "Thick " + thickness.toFixed(2) + " mm" : ""].filter(Boolean).join("\n"));
    const fn = model.get("window_function");
    setText(corners.bl, "W " + Math.round(local.width) + " C "
      + Math.round(local.center) + (unit ? " " + unit : "")
      + (fn !== "LINEAR" ? " " + fn : "") + (model.get("invert") ? "  inverted" : ""));
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
    scaleLabel.dataset.mm = String(nice);
    if (slider.max !== String(count - 1)) slider.max = String(count - 1);
    if (slider.value !== String(index)) slider.value = String(index);
    if (document.activeElement !== fpsInput) fpsInput.value = String(model.get("cine_fps"));
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
    if (!frames[next]) model.send({ type: "need", start: next, stop: next + 1 });
    requestDraw(event);
    if (options.publish !== false && model.get("sync_group")) publish(sliceMessage(next));
  }

  function setWindow(center, width, event) {
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

  model.on("msg:custom", (message, buffers) => {
    if (message.type !== "slices") return;
    const data = buffers[0];
    const bytes = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
    const Type = message.dtype === "int16" ? Int16Array : Float32Array;
    const all = new Type(bytes);
    const size = rows * columns;
    for (let s = message.start; s < message.stop; s++) {
      const offset = (s - message.start) * size;
      frames[s] = all.subarray(offset, offset + size);
    }
    root.dataset.slicesLoaded = String(frames.filter(Boolean).length);
    if (local.index >= message.start
        && local.index < message.stop) requestDraw();
  });

  for (const name of ["window_function", "invert", "zoom", "overlay", "rotation", "flip_horizontal", "flip_vertical",
    "orientation", "measurements", "tool", "cine_fps", "playing"]) {
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
    model.set("zoom", Math.min(16, Math.max(0.1, (from || currentZoom()) * factor)));
    model.save_changes();
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
  fpsInput.addEventListener("change", () => {
    model.set("cine_fps", Math.max(1, Math.min(120, Number(fpsInput.value) || 1)));
    model.save_changes();
  });
  const slider = element("input", "lbx-slider", bar);
  slider.type = "range";
  slider.min = "0";
  slider.setAttribute("aria-label", "Slice");
  slider.addEventListener("input", (event) => setSlice(Number(slider.value), event));

  const observer = new ResizeObserver((entries) => {
    const box = entries[entries.length - 1].contentRect;
    areaSize = [box.width, box.height];
    requestDraw();
  });
  observer.observe(area);
  requestDraw();
  if (model.get("playing")) requestAnimationFrame(cine);
  model.send({ type: "ready", first: local.index });

  return () => {
    observer.disconnect();
    unsubscribe();
    frames.length = 0;
  };
}

export default { render };
