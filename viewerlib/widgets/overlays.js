// Add-on of the stack viewer for non-image objects (overlays.py): SEG and RTSTRUCT
// layers painted over the image and toggled in a legend, key images marked and
// listed, and a presentation state's graphics, texts and displayed area. A row of
// toggles lists the study's objects that refer to the series (the kernel retrieves
// one when it is first switched on). The stack
// viewer calls stackAddOn once and then addOn.draw(context, device, ...) after
// painting each image; `device` maps image pixel space to canvas pixels.
// Every name and text comes from a DICOM file and is set with textContent.

const OVERLAY_CSS = `
.lbx-layers, .lbx-keys { display: flex; flex-wrap: wrap; gap: 4px 10px;
  align-items: center; flex: 1 1 100%; }
.lbx-layers label { display: inline-flex; gap: 4px; align-items: center;
  cursor: pointer; }
.lbx-swatch { width: 10px; height: 10px; border: 1px solid #ccc; display: inline-block; }
.lbx-key-badge { top: 50px; right: 8px; color: #ffd54a; font-weight: 600; }
.lbx-annotation { position: absolute; white-space: pre; pointer-events: none;
  font-size: 12px; text-shadow: 0 0 3px #000, 0 0 2px #000; }
.lbx-objects { display: flex; flex-wrap: wrap; gap: 3px; align-items: center;
  padding-bottom: 3px; }
.lbx-objects[hidden] { display: none; }
.lbx-objects button { background: #333; color: #eee; border: 1px solid #555;
  border-radius: 3px; font-size: 11px; padding: 1px 6px; cursor: pointer;
  min-height: 24px; max-width: 16em; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; }
.lbx-objects button[aria-pressed="true"] { background: #1e5a8c; }
.lbx-objects button[data-state="failed"] { border-color: #b00020; }
`;
// Opacity of a filled segment over the image; outlines are opaque.
const FILL_ALPHA = 0.45;

function stackAddOn({ model, root, area, bar, footer, requestDraw, setSlice, setPan }) {
  injectStyle("lbx-overlay-style", OVERLAY_CSS);
  const rows = model.get("rows");
  const columns = model.get("columns");
  const masks = new Map(); // layer id -> Map(slice index -> bit-packed Uint8Array)
  const layerCanvas = document.createElement("canvas");
  layerCanvas.width = columns;
  layerCanvas.height = rows;
  const layerContext = layerCanvas.getContext("2d");
  let composed = null; // { key, painted } of the layer image last built
  let appliedArea = null;

  // The study's objects, one toggle each, in a row of their own above the tools.
  const objects = element("div", "lbx-objects", footer);
  footer.insertBefore(objects, bar);
  objects.setAttribute("role", "group");
  objects.setAttribute("aria-label", "Annotations of this series");
  const legend = element("div", "lbx-layers", bar);
  const keys = element("div", "lbx-keys", bar);
  const badge = element("div", "lbx-corner lbx-key-badge", area);
  const texts = element("div", "lbx-annotations", area);

  model.on("msg:custom", (message, buffers) => {
    if (message.type !== "layer") return;
    const data = buffers[0];
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const perSlice = message.bytes_per_slice;
    const slices = new Map();
    message.slices.forEach((s, i) => {
      slices.set(s, bytes.slice(i * perSlice, (i + 1) * perSlice));
    });
    masks.set(message.id, slices);
    composed = null;
    root.dataset.layersLoaded = String(masks.size);
    requestDraw();
  });

  function buildLegend() {
    legend.replaceChildren();
    for (const layer of model.get("layers") || []) {
      const label = element("label", "lbx-layer", legend);
      label.dataset.layer = String(layer.id);
      const box = element("input", "lbx-layer-toggle", label);
      box.type = "checkbox";
      box.checked = layer.visible;
      const swatch = element("span", "lbx-swatch", label);
      swatch.style.background = "rgb(" + layer.color.map(Number).join(",") + ")";
      element("span", "lbx-layer-name", label).textContent = layer.name;
      box.addEventListener("change", () => {
        const next = (model.get("layers") || []).map((row) => (row.id === layer.id
          ? { ...row, visible: box.checked } : row));
        model.set("layers", next);
        model.save_changes();
        composed = null;
        requestDraw();
        root.focus();
      });
    }
  }

  function buildObjects() {
    const list = model.get("study_objects") || [];
    objects.replaceChildren();
    objects.hidden = list.length === 0;
    for (const item of list) {
      const button = element("button", "lbx-object", objects);
      button.type = "button";
      button.dataset.object = String(item.id);
      button.dataset.modality = item.modality;
      button.dataset.state = item.state || "";
      button.setAttribute("aria-pressed", String(Boolean(item.shown)));
      button.textContent = item.label + (item.state === "loading" ? " \u2026" : "")
        + (item.state === "failed" ? " (failed)" : "");
      button.title = item.message || (item.shown ? "Hide " : "Show ") + item.label;
      button.addEventListener("click", () => {
        model.send({ type: "study_object", id: item.id, shown: !item.shown });
        root.focus();
      });
    }
    root.dataset.studyObjects = String(list.length);
  }

  function buildKeys() {
    keys.replaceChildren();
    const list = model.get("key_images") || [];
    if (!list.length) return;
    element("span", "lbx-keys-title", keys).textContent =
      (model.get("key_images_title") || "Key images") + ":";
    for (const key of list) {
      const button = element("button", "lbx-key", keys);
      button.type = "button";
      button.textContent = "\u2605 " + key.label;
      button.dataset.slice = String(key.slice_index);
      button.addEventListener("click", () => { setSlice(key.slice_index); root.focus(); });
    }
  }

  // The visible layers of one slice as an RGBA image on the pixel grid.
  function composeLayers(index) {
    const layers = (model.get("layers") || []).filter((l) => l.visible && masks.has(l.id)
      && masks.get(l.id).has(index));
    const key = index + ":" + layers.map((l) => l.id).join(",");
    if (composed && composed.key === key) return composed.painted;
    const image = layerContext.createImageData(columns, rows);
    const out = image.data;
    const bit = (packed, r, c) => {
      const i = r * columns + c;
      return (packed[i >> 3] >> (7 - (i & 7))) & 1;
    };
    for (const layer of layers) {
      const packed = masks.get(layer.id).get(index);
      const [red, green, blue] = layer.color;
      const outline = layer.style === "outline";
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < columns; c++) {
          if (!bit(packed, r, c)) continue;
          // An outline keeps the pixels with a 4-neighbour outside the region.
          if (outline && r > 0 && c > 0 && r < rows - 1 && c < columns - 1
              && bit(packed, r - 1, c) && bit(packed, r + 1, c)
              && bit(packed, r, c - 1) && bit(packed, r, c + 1)) continue;
          const o = 4 * (r * columns + c);
          out[o] = red; out[o + 1] = green; out[o + 2] = blue;
          out[o + 3] = outline ? 255 : Math.round(FILL_ALPHA * 255);
        }
      }
    }
    layerContext.putImageData(image, 0, 0);
    composed = { key, painted: layers.length > 0 };
    return composed.painted;
  }

  // A presentation state's displayed area (PS3.3 C.10.4), applied once: zoom so the
  // area fits (or at true size, or magnified) and pan its centre to the view's.
  function applyDisplayedArea() {
    const selection = model.get("displayed_area") || {};
    const wanted = JSON.stringify(selection);
    if (!selection.top_left && appliedArea !== null) {
      // The presentation state was switched off: back to the centred image.
      appliedArea = null;
      delete root.dataset.displayedArea;
      setPan([0, 0]);
      return;
    }
    if (!selection.top_left || wanted === appliedArea) return;
    const width = area.clientWidth;
    const height = area.clientHeight;
    if (!width || !height) return;
    appliedArea = wanted;
    const [rowSpacing, columnSpacing] = model.get("pixel_spacing_mm");
    const [left, top] = selection.top_left;
    const [right, bottom] = selection.bottom_right;
    const turns = (((model.get("rotation") / 90) % 4) + 4) % 4;
    let widthMm = (right - left + 1) * columnSpacing;
    let heightMm = (bottom - top + 1) * rowSpacing;
    if (turns % 2 === 1) [widthMm, heightMm] = [heightMm, widthMm];
    const finest = Math.min(rowSpacing, columnSpacing);
    let mmToCss = Math.min(width / widthMm, height / heightMm);
    // CSS has 96 px to the inch: true size on a display whose scaling honours it.
    if (selection.size_mode === "TRUE SIZE") mmToCss = 96 / 25.4;
    if (selection.size_mode === "MAGNIFY") mmToCss = selection.magnification / finest;
    model.set("zoom", mmToCss * finest);
    model.save_changes();
    // The area's centre, from the image centre, turned as the display turns it.
    const offset = new DOMMatrix()
      .rotateSelf(model.get("rotation"))
      .scaleSelf(model.get("flip_horizontal") ? -1 : 1, model.get("flip_vertical") ? -1 : 1)
      .scaleSelf(mmToCss * columnSpacing, mmToCss * rowSpacing)
      .transformPoint(new DOMPoint((left - 1 + right) / 2 - columns / 2,
        (top - 1 + bottom) / 2 - rows / 2));
    setPan([-offset.x, -offset.y]);
    root.dataset.displayedArea = wanted;
  }

  // Display shutters (PS3.3 C.7.6.11): the image outside each is covered in the
  // shutter colour; annotations are drawn after, on top.
  function drawShutters(context, device) {
    const shutters = model.get("shutters") || [];
    if (!shutters.length) return;
    context.save();
    context.setTransform(device);
    // Only the image is covered, also where a shape reaches past its edge.
    context.beginPath();
    context.rect(0, 0, columns, rows);
    context.clip();
    for (const shutter of shutters) {
      context.beginPath();
      context.rect(0, 0, columns, rows);
      if (shutter.shape === "CIRCULAR") {
        const [x, y] = shutter.center;
        context.moveTo(x + shutter.radius, y);
        context.arc(x, y, shutter.radius, 0, 2 * Math.PI);
      } else {
        shutter.points.forEach(([x, y], i) => (i ? context.lineTo(x, y)
          : context.moveTo(x, y)));
        context.closePath();
      }
      context.fillStyle = "rgb(" + shutter.color.map(Number).join(",") + ")";
      context.fill("evenodd");
    }
    context.restore();
  }

  function drawGraphics(context, device, index, ratio) {
    if (texts.firstChild) texts.replaceChildren();
    const toDevice = ([x, y]) => {
      const p = device.transformPoint(new DOMPoint(x, y));
      return [p.x, p.y];
    };
    const shown = (model.get("annotations") || []).filter((a) => a.slices === null
      || a.slices === undefined || a.slices.includes(index));
    context.save();
    context.setTransform(1, 0, 0, 1, 0, 0);
    // Two device pixels: at least one is fully covered wherever the line falls.
    context.lineWidth = 2 * ratio;
    for (const item of shown) {
      const color = "rgb(" + item.color.map(Number).join(",") + ")";
      context.strokeStyle = color;
      context.fillStyle = color;
      if (item.kind === "TEXT") {
        drawText(context, item, toDevice, ratio, color);
        continue;
      }
      const points = item.points.map(toDevice);
      context.beginPath();
      if (item.kind === "POINT") {
        for (const [x, y] of points) {
          context.moveTo(x + 3 * ratio, y);
          context.arc(x, y, 3 * ratio, 0, 2 * Math.PI);
        }
      } else if (item.kind === "CIRCLE" && points.length >= 2) {
        const [[x0, y0], [x1, y1]] = points;
        context.arc(x0, y0, Math.hypot(x1 - x0, y1 - y0), 0, 2 * Math.PI);
      } else if (item.kind === "ELLIPSE" && points.length >= 4) {
        // PS3.3 C.10.5.1.2: the ends of the major axis, then of the minor axis.
        const [[ax, ay], [bx, by], [cx, cy], [dx, dy]] = points;
        context.ellipse((ax + bx) / 2, (ay + by) / 2, Math.hypot(bx - ax, by - ay) / 2,
          Math.hypot(dx - cx, dy - cy) / 2, Math.atan2(by - ay, bx - ax), 0, 2 * Math.PI);
      } else {
        // POLYLINE and INTERPOLATED (drawn through its points as straight lines).
        points.forEach(([x, y], i) => (i ? context.lineTo(x, y) : context.moveTo(x, y)));
      }
      if (item.filled) context.fill();
      context.stroke();
    }
    context.restore();
  }

  function drawText(context, item, toDevice, ratio, color) {
    const label = element("div", "lbx-annotation", texts);
    label.textContent = item.text;
    label.style.color = color;
    let at;
    if (item.box) {
      const [a, b] = item.box.map(toDevice);
      at = [Math.min(a[0], b[0]), Math.min(a[1], b[1])];
    } else {
      at = toDevice(item.anchor);
    }
    label.style.left = at[0] / ratio + "px";
    label.style.top = at[1] / ratio + "px";
    if (item.anchor && item.box && item.anchor_visible) {
      const anchor = toDevice(item.anchor);
      context.beginPath();
      context.moveTo(anchor[0], anchor[1]);
      context.lineTo(at[0], at[1]);
      context.stroke();
    }
  }

  function draw(context, device, index, ratio) {
    applyDisplayedArea();
    if (composeLayers(index)) {
      context.save();
      context.setTransform(device);
      context.imageSmoothingEnabled = false;
      context.drawImage(layerCanvas, 0, 0);
      context.restore();
    }
    drawShutters(context, device);
    drawGraphics(context, device, index, ratio);
    const isKey = (model.get("key_images") || []).some((k) => k.slice_index === index);
    const text = isKey ? "\u2605 " + (model.get("key_images_title") || "Key image") : "";
    if (badge.textContent !== text) badge.textContent = text;
    const shownLayers = (model.get("layers") || []).filter((l) => l.visible)
      .map((l) => l.id).join(",");
    // Written only when changed: every attribute write is work for the next frame.
    if (root.dataset.keyImage !== String(isKey)) root.dataset.keyImage = String(isKey);
    if (root.dataset.layersShown !== shownLayers) root.dataset.layersShown = shownLayers;
  }

  for (const name of ["layers", "key_images", "key_images_title"]) {
    model.on("change:" + name, () => { buildLegend(); buildKeys(); composed = null;
      requestDraw(); });
  }
  for (const name of ["annotations", "displayed_area", "shutters"]) {
    model.on("change:" + name, () => requestDraw());
  }
  model.on("change:study_objects", buildObjects);
  buildLegend();
  buildKeys();
  buildObjects();
  return { draw, dispose: () => masks.clear() };
}
