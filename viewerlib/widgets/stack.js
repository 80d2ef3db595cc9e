// Front end of the stack viewer. The kernel sends modality values (int16 or float32)
// as binary buffers; this file windows them (PS3.3 C.11.2.1.2.1), draws them on a
// canvas and turns wheel, keys, drags and pinches into slice, window, zoom and pan.
// Frames live only in this page's memory: nothing goes to browser storage.

const CSS = `
.lbx-stack { position: relative; background: #000; color: #e8e8e8; user-select: none;
  font: 12px/1.35 system-ui, sans-serif; touch-action: none; outline: none;
  height: var(--lbx-height, 560px); min-height: 320px; overflow: hidden; }
.lbx-stack canvas.lbx-view { position: absolute; inset: 0; width: 100%; height: 100%;
  image-rendering: pixelated; cursor: crosshair; }
.lbx-corner { position: absolute; white-space: pre; pointer-events: none;
  text-shadow: 0 0 3px #000, 0 0 2px #000; }
.lbx-tl { top: 6px; left: 8px; } .lbx-tr { top: 6px; right: 8px; text-align: right; }
.lbx-bl { bottom: 30px; left: 8px; } .lbx-br { bottom: 30px; right: 8px; text-align: right; }
.lbx-marker { position: absolute; font-weight: 600; font-size: 14px; pointer-events: none;
  color: #ffd54a; text-shadow: 0 0 3px #000; }
.lbx-scale { position: absolute; bottom: 66px; height: 6px; border: 1px solid #e8e8e8;
  border-top: none; pointer-events: none; left: 82%; }
.lbx-scale-label { position: absolute; bottom: 74px; pointer-events: none;
  transform: translateX(-50%); left: 82%; }
.lbx-bar { position: absolute; left: 0; right: 0; bottom: 0; height: 26px; display: flex;
  gap: 4px; align-items: center; padding: 0 6px; background: rgba(20,20,20,.85); }
.lbx-bar button { background: #333; color: #eee; border: 1px solid #555; border-radius: 3px;
  font-size: 11px; padding: 1px 6px; cursor: pointer; }
.lbx-bar button[aria-pressed="true"] { background: #1e5a8c; }
.lbx-bar input[type=range] { flex: 1; }
`;

function injectStyle() {
  if (document.getElementById("lbx-stack-style")) return;
  const style = document.createElement("style");
  style.id = "lbx-stack-style";
  style.textContent = CSS;
  document.head.appendChild(style);
}

function element(tag, className, parent) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (parent) parent.appendChild(node);
  return node;
}

// PS3.3 C.11.2.1.2.1, the LINEAR function, to 0..255.
function linearWindow(x, center, width) {
  const low = center - 0.5 - (width - 1) / 2;
  const high = center - 0.5 + (width - 1) / 2;
  if (x <= low) return 0;
  if (x > high) return 255;
  return ((x - (center - 0.5)) / (width - 1) + 0.5) * 255;
}

function render({ model, el }) {
  injectStyle();
  const root = element("div", "lbx-stack", el);
  root.tabIndex = 0;
  root.setAttribute("role", "img");
  const view = element("canvas", "lbx-view lightbox-stack-canvas", root);
  const corners = {
    tl: element("div", "lbx-corner lbx-tl", root),
    tr: element("div", "lbx-corner lbx-tr", root),
    bl: element("div", "lbx-corner lbx-bl", root),
    br: element("div", "lbx-corner lbx-br", root),
  };
  const markers = {};
  for (const edge of ["left", "right", "top", "bottom"]) {
    markers[edge] = element("div", "lbx-marker lbx-marker-" + edge, root);
  }
  const scale = element("div", "lbx-scale", root);
  const scaleLabel = element("div", "lbx-corner lbx-scale-label", root);
  const bar = element("div", "lbx-bar", root);
  const slider = element("input", "lbx-slider", bar);
  slider.type = "range";
  slider.min = "0";
  slider.setAttribute("aria-label", "Slice");
  const buttons = element("span", "lbx-buttons", bar);

  const rows = model.get("rows");
  const columns = model.get("columns");
  const count = model.get("number_of_slices");
  const frames = new Array(count);
  const native = document.createElement("canvas");
  native.width = columns;
  native.height = rows;
  const nativeContext = native.getContext("2d");
  const image = nativeContext.createImageData(columns, rows);
  let lut = null; // int16 value + 32768 -> grey level, rebuilt when the window moves
  let lutKey = "";
  let draws = 0;
  let pan = [0, 0];
  let pending = false;

  function buildLut(center, width, invert) {
    const key = center + "/" + width + "/" + invert;
    if (key === lutKey) return;
    lut = new Uint8ClampedArray(65536);
    for (let i = 0; i < 65536; i++) {
      const grey = linearWindow(i - 32768, center, width);
      // MONOCHROME1 and an INVERSE presentation LUT invert after the window.
      lut[i] = invert ? 255 - grey : grey;
    }
    lutKey = key;
  }

  function paintNative(frame) {
    const center = model.get("window_center");
    const width = model.get("window_width");
    const invert = model.get("invert");
    const pixels = image.data;
    if (frame instanceof Int16Array) {
      buildLut(center, width, invert);
      for (let i = 0, j = 0; i < frame.length; i++, j += 4) {
        const grey = lut[frame[i] + 32768];
        pixels[j] = pixels[j + 1] = pixels[j + 2] = grey;
        pixels[j + 3] = 255;
      }
    } else {
      for (let i = 0, j = 0; i < frame.length; i++, j += 4) {
        const grey = linearWindow(frame[i], center, width);
        const value = invert ? 255 - grey : grey;
        pixels[j] = pixels[j + 1] = pixels[j + 2] = value;
        pixels[j + 3] = 255;
      }
    }
    nativeContext.putImageData(image, 0, 0);
  }

  // Display size of one image pixel in CSS pixels along columns (x) and rows (y),
  // keeping the true aspect ratio from (0028,0030) Pixel Spacing.
  function pixelScale() {
    const [rowSpacing, columnSpacing] = model.get("pixel_spacing_mm");
    const widthMm = columns * columnSpacing;
    const heightMm = rows * rowSpacing;
    const box = root.getBoundingClientRect();
    const available = [Math.max(1, box.width), Math.max(1, box.height - 26)];
    let mmToCss = Math.min(available[0] / widthMm, available[1] / heightMm);
    const zoom = model.get("zoom");
    if (zoom > 0) mmToCss = zoom / Math.min(columnSpacing, rowSpacing);
    return { x: mmToCss * columnSpacing, y: mmToCss * rowSpacing, mmToCss, available };
  }

  function draw() {
    pending = false;
    const index = model.get("slice_index");
    const frame = frames[index];
    const box = root.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    const cssWidth = Math.max(1, Math.round(box.width));
    const cssHeight = Math.max(1, Math.round(box.height - 26));
    if (view.width !== cssWidth * ratio || view.height !== cssHeight * ratio) {
      view.width = cssWidth * ratio;
      view.height = cssHeight * ratio;
      view.style.height = cssHeight + "px";
    }
    const context = view.getContext("2d");
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.fillStyle = "#000";
    context.fillRect(0, 0, view.width, view.height);
    const s = pixelScale();
    if (frame) {
      paintNative(frame);
      const drawWidth = columns * s.x * ratio;
      const drawHeight = rows * s.y * ratio;
      const x = (view.width - drawWidth) / 2 + pan[0] * ratio;
      const y = (view.height - drawHeight) / 2 + pan[1] * ratio;
      // Enlarged images show the true pixel grid; smoothing only when shrinking.
      context.imageSmoothingEnabled = s.x < 1 || s.y < 1;
      context.drawImage(native, x, y, drawWidth, drawHeight);
      draws += 1;
      root.dataset.draws = String(draws);
    }
    root.dataset.sliceIndex = String(index);
    root.dataset.painted = frame ? "true" : "false";
    writeOverlay(s, index, Boolean(frame));
  }

  function requestDraw() {
    if (!pending) {
      pending = true;
      requestAnimationFrame(draw);
    }
  }

  function writeOverlay(s, index, painted) {
    const overlay = model.get("overlay") || {};
    const positions = model.get("slice_positions_mm") || [];
    const unit = model.get("value_unit");
    // textContent, never innerHTML: names and descriptions come from DICOM files.
    corners.tl.textContent = [overlay.patient, overlay.study, overlay.series]
      .filter(Boolean).join("\n");
    const imageLine = "Im " + (index + 1) + "/" + count;
    const position = positions.length > index
      ? "Pos " + positions[index].toFixed(1) + " mm" : "";
    const thickness = model.get("slice_thickness_mm");
    corners.tr.textContent = [overlay.institution, imageLine, position,
      thickness ? "Spacing " + thickness.toFixed(2) + " mm" : ""].filter(Boolean).join("\n");
    corners.bl.textContent = "W " + Math.round(model.get("window_width")) + " C "
      + Math.round(model.get("window_center")) + (unit ? " " + unit : "")
      + (model.get("invert") ? "  inverted" : "");
    corners.br.textContent = "Zoom " + (s.mmToCss * Math.min(...model.get("pixel_spacing_mm")))
      .toFixed(2) + "x" + (painted ? "" : "\nloading...");
    const orientation = model.get("orientation") || {};
    for (const edge of Object.keys(markers)) {
      markers[edge].textContent = orientation[edge] || "";
    }
    const box = root.getBoundingClientRect();
    const viewHeight = box.height - 26;
    markers.left.style.cssText = "left:6px;top:" + (viewHeight / 2 - 8) + "px";
    markers.right.style.cssText = "right:6px;top:" + (viewHeight / 2 - 8) + "px";
    markers.top.style.cssText = "top:4px;left:" + (box.width / 2 - 5) + "px";
    markers.bottom.style.cssText = "top:" + (viewHeight - 22) + "px;left:"
      + (box.width / 2 - 5) + "px";
    // A scale bar of a round length near a fifth of the view.
    const target = box.width / 5 / s.mmToCss;
    const nice = [1, 2, 5, 10, 20, 50, 100, 200, 500].find((mm) => mm >= target) || 500;
    scale.style.width = nice * s.mmToCss + "px";
    scale.style.marginLeft = -(nice * s.mmToCss) / 2 + "px";
    scaleLabel.textContent = nice + " mm";
    slider.max = String(count - 1);
    slider.value = String(index);
  }

  function setSlice(index) {
    const next = Math.min(count - 1, Math.max(0, index));
    if (next === model.get("slice_index")) return;
    model.set("slice_index", next);
    model.save_changes();
    if (!frames[next]) model.send({ type: "need", start: next, stop: next + 1 });
    requestDraw();
  }

  model.on("msg:custom", (message, buffers) => {
    if (message.type !== "slices") return;
    const view = buffers[0];
    const bytes = view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength);
    const Type = message.dtype === "int16" ? Int16Array : Float32Array;
    const all = new Type(bytes);
    const size = rows * columns;
    for (let s = message.start; s < message.stop; s++) {
      const offset = (s - message.start) * size;
      frames[s] = all.subarray(offset, offset + size);
    }
    root.dataset.slicesLoaded = String(frames.filter(Boolean).length);
    if (model.get("slice_index") >= message.start
        && model.get("slice_index") < message.stop) requestDraw();
  });

  for (const name of ["slice_index", "window_center", "window_width", "invert", "zoom",
    "overlay"]) {
    model.on("change:" + name, requestDraw);
  }

  // Wheel scrolls slices; with Ctrl it zooms.
  root.addEventListener("wheel", (event) => {
    event.preventDefault();
    if (event.ctrlKey) {
      const current = pixelScale().mmToCss * Math.min(...model.get("pixel_spacing_mm"));
      model.set("zoom", Math.min(16, Math.max(0.1, current * (event.deltaY < 0 ? 1.1 : 0.9))));
      model.save_changes();
      return;
    }
    setSlice(model.get("slice_index") + (event.deltaY > 0 ? 1 : -1));
  }, { passive: false });

  root.addEventListener("keydown", (event) => {
    const steps = { ArrowDown: 1, ArrowRight: 1, PageDown: 10, ArrowUp: -1, ArrowLeft: -1,
      PageUp: -10 };
    if (event.key in steps) {
      event.preventDefault();
      setSlice(model.get("slice_index") + steps[event.key]);
    } else if (event.key === "Home") {
      setSlice(0);
    } else if (event.key === "End") {
      setSlice(count - 1);
    } else if (event.key === "i") {
      model.set("invert", !model.get("invert"));
      model.save_changes();
    }
  });

  slider.addEventListener("input", () => setSlice(Number(slider.value)));

  // Pointer gestures: one finger or the left button drags the window (horizontal =
  // width, vertical = center); the right button or Shift pans; two fingers pinch to
  // zoom, and a vertical swipe with two fingers scrolls slices.
  const pointers = new Map();
  let gesture = null;
  view.addEventListener("contextmenu", (event) => event.preventDefault());
  view.addEventListener("pointerdown", (event) => {
    root.focus({ preventScroll: true });
    view.setPointerCapture(event.pointerId);
    pointers.set(event.pointerId, [event.clientX, event.clientY]);
    if (pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      gesture = { kind: "pinch", distance: Math.hypot(a[0] - b[0], a[1] - b[1]),
        zoom: pixelScale().mmToCss * Math.min(...model.get("pixel_spacing_mm")),
        middleY: (a[1] + b[1]) / 2, slice: model.get("slice_index") };
    } else {
      gesture = { kind: event.button === 2 || event.shiftKey ? "pan" : "window",
        x: event.clientX, y: event.clientY, pan: [...pan],
        center: model.get("window_center"), width: model.get("window_width") };
    }
  });
  view.addEventListener("pointermove", (event) => {
    if (!pointers.has(event.pointerId) || !gesture) return;
    pointers.set(event.pointerId, [event.clientX, event.clientY]);
    if (gesture.kind === "pinch" && pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      const distance = Math.hypot(a[0] - b[0], a[1] - b[1]);
      const middleY = (a[1] + b[1]) / 2;
      if (Math.abs(distance - gesture.distance) > 12) {
        model.set("zoom", Math.min(16, Math.max(0.1, gesture.zoom * distance / gesture.distance)));
        model.save_changes();
      } else {
        setSlice(gesture.slice + Math.round((middleY - gesture.middleY) / 12));
      }
      return;
    }
    const dx = event.clientX - gesture.x;
    const dy = event.clientY - gesture.y;
    if (gesture.kind === "pan") {
      pan = [gesture.pan[0] + dx, gesture.pan[1] + dy];
      requestDraw();
    } else if (gesture.kind === "window") {
      // Sensitivity follows the width, so narrow brain windows stay controllable.
      const step = Math.max(1, gesture.width / 256);
      model.set("window_width", Math.max(1, gesture.width + dx * step));
      model.set("window_center", gesture.center + dy * step);
      model.save_changes();
    }
  });
  const release = (event) => {
    pointers.delete(event.pointerId);
    if (pointers.size === 0) gesture = null;
  };
  view.addEventListener("pointerup", release);
  view.addEventListener("pointercancel", release);

  function toolButton(label, onClick, title) {
    const button = element("button", "lbx-button", buttons);
    button.type = "button";
    button.textContent = label;
    if (title) button.title = title;
    button.addEventListener("click", onClick);
    return button;
  }
  for (const [name, center, width] of model.get("presets") || []) {
    toolButton(name, () => {
      model.set("window_center", center);
      model.set("window_width", width);
      model.save_changes();
    }, "Window " + width + " / level " + center);
  }
  toolButton("Fit", () => { pan = [0, 0]; model.set("zoom", 0); model.save_changes(); });
  toolButton("1:1", () => {
    pan = [0, 0];
    model.set("zoom", 1 / (window.devicePixelRatio || 1));
    model.save_changes();
  }, "One image pixel to one screen pixel");
  toolButton("Invert", () => { model.set("invert", !model.get("invert")); model.save_changes(); });

  const observer = new ResizeObserver(requestDraw);
  observer.observe(root);
  requestDraw();
  model.send({ type: "ready", first: model.get("slice_index") });

  return () => {
    observer.disconnect();
    frames.length = 0;
  };
}

export default { render };
