// Add-on of the stack viewer for non-image objects (overlays.py): SEG and RTSTRUCT
// layers painted over the image and toggled in a legend, key images marked and
// listed, and a presentation state's VOI (per-image windows, VOI LUT tables), its
// Presentation LUT, shutters (bitmap ones too), graphics, texts and displayed area.
// A row of toggles lists the study's objects that refer to the series (the kernel
// retrieves one when it is first switched on). The stack viewer calls stackAddOn
// once, addOn.display(...) to window each frame, and addOn.draw(context, device,
// ...) after painting each image; `device` maps image pixel space to canvas pixels.
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
// Display tables (one RGBA word per int16 value) kept for the slices' VOIs.
const DISPLAY_TABLES = 4;

// Round half to even, as numpy's rint: the Presentation LUT index of the pipeline.
function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function stackAddOn({ model, root, area, bar, footer, requestDraw, setSlice, setPan }) {
  injectStyle("lbx-overlay-style", OVERLAY_CSS);
  const rows = model.get("rows");
  const columns = model.get("columns");
  // layer id -> Map(slice index -> { top, left, rows, columns, bits }): the bounding
  // box of the slice's mask, bit-packed.
  const masks = new Map();
  // Lookup tables (id -> { first, values: Float32Array }) and shutter masks
  // (id -> { rows, columns, bits, canvas, color }) the kernel sent.
  const tables = new Map();
  const shutterMasks = new Map();
  const displayTables = new Map(); // display key -> Uint32Array over int16 values
  let voiReleased = false;
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

  // The bytes of a buffer the message carries, copied out of a larger one.
  function bytesOf(data) {
    return new Uint8Array(data.buffer.slice(data.byteOffset,
      data.byteOffset + data.byteLength));
  }

  model.on("msg:custom", (message, buffers) => {
    if (message.type === "lut") {
      const values = new Float32Array(bytesOf(buffers[0]).buffer);
      tables.set(message.id, { first: message.first, values });
      root.dataset.tablesLoaded = String(tables.size);
      requestDraw();
      return;
    }
    if (message.type === "shutter_mask") {
      shutterMasks.set(message.id, { rows: message.rows, columns: message.columns,
        bits: bytesOf(buffers[0]), canvas: null, color: "" });
      root.dataset.shutterMasksLoaded = String(shutterMasks.size);
      requestDraw();
      return;
    }
    if (message.type !== "layer") return;
    const bytes = bytesOf(buffers[0]);
    const slices = new Map();
    message.slices.forEach((s, i) => {
      const [top, left, boxRows, boxColumns] = message.boxes[i];
      const start = message.offsets[i];
      slices.set(s, { top, left, rows: boxRows, columns: boxColumns,
        bits: bytes.subarray(start, start + Math.ceil(boxRows * boxColumns / 8)) });
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
    // A pixel of the box's mask; outside the box, none.
    const bit = (box, r, c) => {
      const y = r - box.top;
      const x = c - box.left;
      if (y < 0 || x < 0 || y >= box.rows || x >= box.columns) return 0;
      const i = y * box.columns + x;
      return (box.bits[i >> 3] >> (7 - (i & 7))) & 1;
    };
    for (const layer of layers) {
      const box = masks.get(layer.id).get(index);
      const [red, green, blue] = layer.color;
      const outline = layer.style === "outline";
      for (let r = box.top; r < box.top + box.rows; r++) {
        for (let c = box.left; c < box.left + box.columns; c++) {
          if (!bit(box, r, c)) continue;
          // An outline keeps the pixels with a 4-neighbour outside the region.
          if (outline && r > 0 && c > 0 && r < rows - 1 && c < columns - 1
              && bit(box, r - 1, c) && bit(box, r + 1, c)
              && bit(box, r, c - 1) && bit(box, r, c + 1)) continue;
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
  // shutter colour; a bitmap shutter (C.7.6.15) covers the pixels its mask sets.
  // Annotations are drawn after, on top.
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
      const color = "rgb(" + shutter.color.map(Number).join(",") + ")";
      if (shutter.shape === "BITMAP") {
        const canvas = bitmapShutter(shutter);
        context.imageSmoothingEnabled = false;
        if (canvas) {
          context.drawImage(canvas, 0, 0);
        } else {
          // Its mask is on its way: hide the whole image meanwhile, never more
          // of it than the presentation state shows.
          context.fillStyle = color;
          context.fillRect(0, 0, columns, rows);
        }
        continue;
      }
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
      context.fillStyle = color;
      context.fill("evenodd");
    }
    context.restore();
  }

  // The bitmap shutter's mask as an image in its colour, on the pixel grid.
  function bitmapShutter(shutter) {
    const mask = shutterMasks.get(shutter.mask);
    if (!mask) return null;
    const color = shutter.color.map(Number);
    const key = color.join(",");
    if (mask.canvas && mask.color === key) return mask.canvas;
    const canvas = document.createElement("canvas");
    canvas.width = mask.columns;
    canvas.height = mask.rows;
    const context = canvas.getContext("2d");
    const image = context.createImageData(mask.columns, mask.rows);
    const out = image.data;
    for (let i = 0; i < mask.rows * mask.columns; i++) {
      if (!((mask.bits[i >> 3] >> (7 - (i & 7))) & 1)) continue;
      out[4 * i] = color[0]; out[4 * i + 1] = color[1]; out[4 * i + 2] = color[2];
      out[4 * i + 3] = 255;
    }
    context.putImageData(image, 0, 0);
    mask.canvas = canvas;
    mask.color = key;
    return canvas;
  }

  // The presentation state's VOI for a slice: the first item naming it, unless the
  // reader has dragged the window since.
  function voiFor(index) {
    if (voiReleased) return null;
    return (model.get("presentation_voi") || []).find((item) => item.slices === null
      || item.slices === undefined || item.slices.includes(index)) || null;
  }

  // How the stack viewer windows slice `index` while a presentation state's VOI or
  // Presentation LUT applies, else null (its own window, voi.js). `grey` is the
  // pipeline's chain on one modality value: the VOI (a window, or the kernel's
  // table of float32 VOI outputs indexed by floor(value) - first, PS3.3
  // C.11.2.1.1), then the Presentation LUT (the entry nearest the VOI output
  // scaled onto the table, C.11.6.1) or the inversion; the page rounds it to 8 bits
  // half to even, as the pipeline does.
  function display(index, fn, center, width, invert) {
    const voi = voiFor(index);
    const presentation = model.get("presentation_lut") || {};
    const hasTable = presentation.lut !== undefined && presentation.lut !== null;
    if (!voi && !hasTable) return null;
    let grey;
    let key;
    if (voi && voi.kind === "lut") {
      const table = tables.get(voi.lut);
      key = "lut:" + voi.lut;
      if (!table) return pending(key);
      const last = table.values.length - 1;
      const values = table.values;
      const first = table.first;
      grey = (x) => values[Math.min(last, Math.max(0, Math.floor(x) - first))];
    } else {
      const chosen = voi ? [voi.function, voi.center, voi.width] : [fn, center, width];
      const ramp = voiFunction(...chosen);
      key = "window:" + chosen.join(":");
      grey = (x) => Math.fround(ramp(x));
    }
    let shown = grey;
    if (hasTable) {
      const table = tables.get(presentation.lut);
      key += "/plut:" + presentation.lut;
      if (!table) return pending(key);
      const values = table.values;
      const last = values.length - 1;
      const scale = last / 255;
      shown = (x) => values[Math.min(last, Math.max(0, roundHalfEven(grey(x) * scale)))];
    }
    if (invert) {
      const before = shown;
      shown = (x) => Math.fround(255 - before(x));
      key += "/inverted";
    }
    return { key, paint: (pixels, frame) => paintThrough(pixels, frame, key, shown) };
  }

  // A table not here yet: black until it arrives (then the key changes).
  function pending(key) {
    return { key: key + "/pending", paint: (pixels) => {
      const words = new Uint32Array(pixels.buffer, pixels.byteOffset,
        pixels.length / 4);
      words.fill(0xff000000);
    } };
  }

  // Window a frame through `shown`: int16 frames by a table over every value,
  // float32 ones value by value (NaN as black), as voi.js does the window.
  function paintThrough(pixels, frame, key, shown) {
    const level = new Uint8ClampedArray(1);
    if (frame instanceof Int16Array) {
      let table = displayTables.get(key);
      if (!table) {
        table = new Uint32Array(65536);
        for (let i = 0; i < 65536; i++) {
          level[0] = shown(i - 32768);
          const g = level[0];
          table[i] = (0xff000000 | (g << 16) | (g << 8) | g) >>> 0;
        }
        displayTables.set(key, table);
        if (displayTables.size > DISPLAY_TABLES) {
          displayTables.delete(displayTables.keys().next().value);
        }
      }
      const words = new Uint32Array(pixels.buffer, pixels.byteOffset, frame.length);
      for (let i = 0; i < frame.length; i++) words[i] = table[frame[i] + 32768];
      return;
    }
    for (let i = 0, j = 0; i < frame.length; i++, j += 4) {
      const v = frame[i];
      level[0] = Number.isNaN(v) ? 0 : shown(v);
      pixels[j] = pixels[j + 1] = pixels[j + 2] = level[0];
      pixels[j + 3] = 255;
    }
  }

  // The corner's window line for slice `index`, given the viewer's own.
  function voiText(index, own) {
    const voi = voiFor(index);
    const unit = model.get("value_unit");
    let text = own;
    if (voi && voi.kind === "lut") {
      text = "VOI LUT" + (voi.explanation ? " " + voi.explanation : "");
    } else if (voi) {
      text = "W " + Math.round(voi.width) + " C " + Math.round(voi.center)
        + (unit ? " " + unit : "") + (voi.function !== "LINEAR" ? " " + voi.function
        : "");
    }
    const presentation = model.get("presentation_lut") || {};
    if (presentation.lut !== undefined && presentation.lut !== null) {
      text += "  P-LUT" + (presentation.explanation ? " " + presentation.explanation
        : "");
    }
    return text;
  }

  // The reader drags the window or picks a preset: the viewer's own window applies
  // to every slice from now on (the kernel empties presentation_voi).
  function releaseVoi() {
    if (voiReleased || !(model.get("presentation_voi") || []).length) return;
    voiReleased = true;
    model.send({ type: "voi_released" });
    requestDraw();
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
    const voi = voiFor(index);
    const applied = voi ? voi.kind + (voi.kind === "lut" ? ":" + voi.lut : "") : "";
    if (root.dataset.voi !== applied) root.dataset.voi = applied;
    // Whether this paint had every table and mask the presentation state names.
    const presentation = model.get("presentation_lut") || {};
    const ready = String((!voi || voi.kind !== "lut" || tables.has(voi.lut))
      && (presentation.lut === undefined || presentation.lut === null
        || tables.has(presentation.lut))
      && (model.get("shutters") || []).every((shutter) => shutter.shape !== "BITMAP"
        || shutterMasks.has(shutter.mask)));
    if (root.dataset.presentationReady !== ready) root.dataset.presentationReady = ready;
    // Written only when changed: every attribute write is work for the next frame.
    if (root.dataset.keyImage !== String(isKey)) root.dataset.keyImage = String(isKey);
    if (root.dataset.layersShown !== shownLayers) root.dataset.layersShown = shownLayers;
  }

  for (const name of ["layers", "key_images", "key_images_title"]) {
    model.on("change:" + name, () => { buildLegend(); buildKeys(); composed = null;
      requestDraw(); });
  }
  for (const name of ["annotations", "displayed_area", "shutters",
    "presentation_lut"]) {
    model.on("change:" + name, () => requestDraw());
  }
  model.on("change:presentation_voi", () => {
    voiReleased = false;
    requestDraw();
  });
  model.on("change:study_objects", buildObjects);
  buildLegend();
  buildKeys();
  buildObjects();
  return { draw, display, voiText, releaseVoi, dispose: () => {
    masks.clear();
    tables.clear();
    shutterMasks.clear();
    displayTables.clear();
  } };
}
