// Front end of the MPR viewer. The volume arrives once as binary messages; this file
// reslices it in patient space (the grid and trilinear sampling of
// viewerlib.volume.mpr.oblique, NaN outside the volume), combines slab planes by MIP,
// MinIP or average, windows the result (voi.js) and draws three linked planes with a
// crosshair. The voxels live only in this page's memory.
//
// Touch (a tablet): a tap puts the crosshair there; a one-finger swipe up or down
// scrolls that plane through the volume (one step per 12 px, as the stack viewer);
// two fingers pinch to zoom that view and move to pan it. With a mouse, Ctrl +
// wheel zooms. "Fit" puts every view back.

const MPR_CSS = `
.lbx-mpr { display: flex; flex-direction: column; background: #000; color: #e8e8e8;
  font: 12px/1.35 system-ui, sans-serif; user-select: none; touch-action: none;
  height: var(--lbx-height, 460px); }
.lbx-mpr-views { flex: 1; display: grid; grid-template-columns: repeat(3, 1fr); gap: 2px;
  min-height: 160px; }
.lbx-mpr-view { position: relative; overflow: hidden; background: #000; }
.lbx-mpr-view canvas { position: absolute; left: 0; top: 0; width: 100%; height: 100%;
  cursor: crosshair; touch-action: none; }
.lbx-mpr .lbx-corner { position: absolute; white-space: pre; pointer-events: none;
  text-shadow: 0 0 3px #000; }
.lbx-mpr .lbx-marker { position: absolute; font-weight: 600; pointer-events: none;
  color: #ffd54a; text-shadow: 0 0 3px #000; }
.lbx-mpr-bar { display: flex; flex-wrap: wrap; gap: 6px; align-items: center;
  padding: 3px 6px; background: #141414; }
.lbx-mpr-bar select, .lbx-mpr-bar input, .lbx-mpr-bar button { background: #333;
  color: #eee; border: 1px solid #555; border-radius: 3px; font-size: 11px;
  min-height: 24px; }
.lbx-mpr-bar input[type=number] { width: 4em; }
.lbx-mpr-warning { padding: 4px 8px; background: #8c0000; color: #fff;
  font-weight: 600; white-space: pre-wrap; }
.lbx-mpr-warning[hidden], .lbx-mpr-missing[hidden] { display: none; }
.lbx-mpr-missing { position: absolute; left: 50%; top: 50%; z-index: 2;
  transform: translate(-50%, -50%); max-width: 85%; padding: 6px 10px;
  background: rgba(150, 0, 0, .93); border: 2px solid #ff5252; border-radius: 4px;
  color: #fff; font-weight: 600; text-align: center; white-space: pre-wrap;
  pointer-events: none; }
`;

// Orange dashed lines (apart from the crosshair's colours) where the slices that
// could not be decoded cut a view.
const MISSING_COLOUR = "#ff9100";

const PLANE_COLOURS = { axial: "#ff5252", coronal: "#52ff7a", sagittal: "#4fa3ff" };

function dot(a, b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
function cross(a, b) {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}
function add(a, b, scale = 1) { return [a[0] + b[0] * scale, a[1] + b[1] * scale, a[2] + b[2] * scale]; }
function normalise(a) {
  const n = Math.hypot(a[0], a[1], a[2]);
  return n ? [a[0] / n, a[1] / n, a[2] / n] : a;
}
// PS3.3 C.7.6.1.1.1: +x patient left, +y posterior, +z head; biggest first.
function directionLetters(v) {
  const letters = [["R", "L"], ["A", "P"], ["F", "H"]];
  const order = [0, 1, 2].sort((a, b) => Math.abs(v[b]) - Math.abs(v[a]));
  let text = "";
  for (const axis of order) {
    if (Math.abs(v[axis]) < 0.25) break;
    text += letters[axis][v[axis] > 0 ? 1 : 0];
  }
  return text;
}

function render({ model, el }) {
  injectStyle("lbx-mpr-style", MPR_CSS);
  const root = element("div", "lbx-mpr", el);
  root.tabIndex = 0;
  const title = element("div", "lbx-corner", root);
  title.style.cssText = "position:relative;padding:2px 6px";
  // Slices that could not be decoded: the kernel's warning, text only.
  const warning = element("div", "lbx-mpr-warning", root);
  warning.setAttribute("role", "alert");
  warning.textContent = model.get("warning") || "";
  warning.hidden = !warning.textContent;
  const grid = element("div", "lbx-mpr-views", root);
  const bar = element("div", "lbx-mpr-bar", root);
  const [S, R, C] = model.get("shape");
  const affine = model.get("affine");
  const inverse = model.get("inverse_affine");
  const Type = model.get("dtype") === "int16" ? Int16Array : Float32Array;
  const voxels = new Type(S * R * C);
  let loaded = 0;
  const lutCache = makeLutCache();
  let pending = false;
  let draws = 0;

  function toLps(s, r, c) {
    return [0, 1, 2].map((k) => affine[4 * k] * s + affine[4 * k + 1] * r
      + affine[4 * k + 2] * c + affine[4 * k + 3]);
  }
  const corners = [];
  for (const s of [0, S - 1]) for (const r of [0, R - 1]) for (const c of [0, C - 1]) {
    corners.push(toLps(s, r, c));
  }
  const volumeCenter = [0, 1, 2].map((k) => corners.reduce((t, p) => t + p[k], 0) / 8);
  const spacing = model.get("spacing_mm");
  const step = Math.min(spacing[1], spacing[2]);

  function planeOf(name) {
    const theta = model.get("oblique_deg") * Math.PI / 180;
    const turned = (v) => [Math.cos(theta) * v[0] - Math.sin(theta) * v[1],
      Math.sin(theta) * v[0] + Math.cos(theta) * v[1], v[2]];
    if (name === "axial") return { row: [0, 1, 0], col: [1, 0, 0] };
    if (name === "coronal") return { row: [0, 0, -1], col: turned([1, 0, 0]) };
    return { row: [0, 0, -1], col: turned([0, 1, 0]) };
  }

  // The reformat grid of viewerlib.volume.mpr.oblique through the crosshair.
  function geometry(name) {
    const plane = planeOf(name);
    const row = normalise(plane.row);
    let col = add(plane.col, row, -dot(plane.col, row));
    col = normalise(col);
    const normal = cross(col, row);
    const center = model.get("center_mm");
    const through = add(volumeCenter, normal, dot(add(center, volumeCenter, -1), normal));
    const alongRows = corners.map((p) => dot(add(p, through, -1), row));
    const alongCols = corners.map((p) => dot(add(p, through, -1), col));
    const nRows = Math.min(Math.floor((Math.max(...alongRows) - Math.min(...alongRows))
      / step) + 1, 2048);
    const nCols = Math.min(Math.floor((Math.max(...alongCols) - Math.min(...alongCols))
      / step) + 1, 2048);
    const origin = add(add(through, row, Math.min(...alongRows)), col, Math.min(...alongCols));
    return { row, col, normal, origin, nRows, nCols };
  }

  function toIndex(p) {
    return [0, 1, 2].map((k) => inverse[4 * k] * p[0] + inverse[4 * k + 1] * p[1]
      + inverse[4 * k + 2] * p[2] + inverse[4 * k + 3]);
  }
  function toIndexDirection(v) {
    return [0, 1, 2].map((k) => inverse[4 * k] * v[0] + inverse[4 * k + 1] * v[1]
      + inverse[4 * k + 2] * v[2]);
  }

  // Trilinear sample at a fractional (slice, row, column); NaN outside the volume.
  function sample(s, r, c) {
    if (!(s >= 0 && s <= S - 1 && r >= 0 && r <= R - 1 && c >= 0 && c <= C - 1)) return NaN;
    const s0 = S > 1 ? Math.min(Math.floor(s), S - 2) : 0;
    const r0 = R > 1 ? Math.min(Math.floor(r), R - 2) : 0;
    const c0 = C > 1 ? Math.min(Math.floor(c), C - 2) : 0;
    const fs = s - s0, fr = r - r0, fc = c - c0;
    const ds = S > 1 ? R * C : 0, dr = R > 1 ? C : 0, dc = C > 1 ? 1 : 0;
    const i = (s0 * R + r0) * C + c0;
    const a = voxels[i] * (1 - fc) + voxels[i + dc] * fc;
    const b = voxels[i + dr] * (1 - fc) + voxels[i + dr + dc] * fc;
    const d = voxels[i + ds] * (1 - fc) + voxels[i + ds + dc] * fc;
    const e = voxels[i + ds + dr] * (1 - fc) + voxels[i + ds + dr + dc] * fc;
    return (a * (1 - fr) + b * fr) * (1 - fs) + (d * (1 - fr) + e * fr) * fs;
  }

  function reslice(g) {
    const thickness = model.get("slab_thickness_mm");
    const mode = model.get("slab_mode");
    const sliceStep = Math.max(spacing[0], 1e-3);
    const planes = Math.max(1, Math.ceil(thickness / sliceStep));
    const out = new Float32Array(g.nRows * g.nCols).fill(NaN);
    const counts = mode === "average" ? new Uint16Array(out.length) : null;
    const dRow = toIndexDirection(g.row.map((v) => v * step));
    const dCol = toIndexDirection(g.col.map((v) => v * step));
    for (let k = 0; k < planes; k++) {
      const offset = planes > 1 ? (k - (planes - 1) / 2) * (thickness / planes) : 0;
      const start = toIndex(add(g.origin, g.normal, offset));
      for (let i = 0, n = 0; i < g.nRows; i++) {
        let s = start[0] + i * dRow[0], r = start[1] + i * dRow[1], c = start[2] + i * dRow[2];
        for (let j = 0; j < g.nCols; j++, n++) {
          const v = sample(s, r, c);
          s += dCol[0]; r += dCol[1]; c += dCol[2];
          if (Number.isNaN(v)) continue;
          const old = out[n];
          if (Number.isNaN(old)) {
            out[n] = v;
          } else if (mode === "mip") {
            if (v > old) out[n] = v;
          } else if (mode === "minip") {
            if (v < old) out[n] = v;
          } else {
            out[n] = old + v;
          }
          if (counts) counts[n] += 1;
        }
      }
    }
    if (counts) for (let n = 0; n < out.length; n++) if (counts[n] > 1) out[n] /= counts[n];
    return out;
  }

  const views = {};
  for (const name of ["axial", "coronal", "sagittal"]) {
    const box = element("div", "lbx-mpr-view lbx-mpr-" + name, grid);
    const canvas = element("canvas", "lbx-mpr-canvas", box);
    const label = element("div", "lbx-corner lbx-mpr-label", box);
    label.style.cssText = "top:4px;left:6px;color:" + PLANE_COLOURS[name];
    const markers = {};
    for (const edge of ["left", "right", "top", "bottom"]) {
      markers[edge] = element("div", "lbx-marker lbx-marker-" + edge, box);
    }
    markers.left.style.cssText = "left:4px;top:50%";
    markers.right.style.cssText = "right:4px;top:50%";
    markers.top.style.cssText = "top:4px;left:50%";
    markers.bottom.style.cssText = "bottom:4px;left:50%";
    const native = document.createElement("canvas");
    const missing = element("div", "lbx-mpr-missing", box);
    missing.setAttribute("role", "alert");
    missing.hidden = true;
    // zoom: times the size that fits the view; pan: CSS pixels from the centre.
    views[name] = { box, canvas, label, markers, native, missing, fit: null,
      geometry: null, zoom: 1, pan: [0, 0] };
  }

  function draw() {
    pending = false;
    if (loaded < S) return;
    const started = performance.now();
    const center = model.get("center_mm");
    for (const [name, v] of Object.entries(views)) {
      const g = geometry(name);
      v.geometry = g;
      const pixels = reslice(g);
      if (v.native.width !== g.nCols || v.native.height !== g.nRows) {
        v.native.width = g.nCols;
        v.native.height = g.nRows;
      }
      const context = v.native.getContext("2d");
      const image = context.createImageData(g.nCols, g.nRows);
      windowInto(image.data, pixels, model.get("window_function"),
        model.get("window_center"), model.get("window_width"), model.get("invert"),
        lutCache);
      context.putImageData(image, 0, 0);
      const box = v.box.getBoundingClientRect();
      const ratio = window.devicePixelRatio || 1;
      v.canvas.width = Math.max(1, Math.round(box.width * ratio));
      v.canvas.height = Math.max(1, Math.round(box.height * ratio));
      // Square pixels: the reformat grid is isotropic in mm, so this is true aspect.
      const scale = v.zoom
        * Math.min(v.canvas.width / g.nCols, v.canvas.height / g.nRows);
      const x0 = (v.canvas.width - g.nCols * scale) / 2 + v.pan[0] * ratio;
      const y0 = (v.canvas.height - g.nRows * scale) / 2 + v.pan[1] * ratio;
      v.fit = { scale, x0, y0, ratio };
      const view = v.canvas.getContext("2d");
      view.fillStyle = "#000";
      view.fillRect(0, 0, v.canvas.width, v.canvas.height);
      view.imageSmoothingEnabled = scale < 1;
      view.drawImage(v.native, x0, y0, g.nCols * scale, g.nRows * scale);
      // Crosshair: where the other planes cut this one, in their colours.
      const offset = add(center, g.origin, -1);
      const cx = x0 + (dot(offset, g.col) / step + 0.5) * scale;
      const cy = y0 + (dot(offset, g.row) / step + 0.5) * scale;
      for (const other of Object.keys(views)) {
        if (other === name || !model.get("show_crosshair")) continue;
        const p = planeOf(other);
        const direction = cross(g.normal, cross(normalise(p.col), normalise(p.row)));
        const dx = dot(direction, g.col), dy = dot(direction, g.row);
        const length = 4 * Math.max(v.canvas.width, v.canvas.height);
        const n = Math.hypot(dx, dy) || 1;
        view.strokeStyle = PLANE_COLOURS[other];
        view.lineWidth = ratio;
        view.beginPath();
        view.moveTo(cx - dx / n * length, cy - dy / n * length);
        view.lineTo(cx + dx / n * length, cy + dy / n * length);
        view.stroke();
      }
      markMissing(v, g, view, x0, y0, scale, ratio);
      v.canvas.dataset.crosshair = JSON.stringify([cx, cy]);
      const mode = model.get("slab_mode");
      const thickness = model.get("slab_thickness_mm");
      const oblique = name !== "axial" && model.get("oblique_deg") !== 0;
      v.label.textContent = (oblique ? "Oblique " : "") + name[0].toUpperCase()
        + name.slice(1) + (thickness > 0 ? "  " + ({ mip: "MIP", minip: "MinIP",
          average: "Average" })[mode] + " " + thickness.toFixed(1) + " mm" : "");
      v.markers.left.textContent = directionLetters(g.col.map((x) => -x));
      v.markers.right.textContent = directionLetters(g.col);
      v.markers.top.textContent = directionLetters(g.row.map((x) => -x));
      v.markers.bottom.textContent = directionLetters(g.row);
      v.box.dataset.rows = String(g.nRows);
      v.box.dataset.columns = String(g.nCols);
      v.box.dataset.fit = JSON.stringify([scale, x0, y0]);
      v.box.dataset.zoom = String(v.zoom);
      v.box.dataset.geometry = JSON.stringify({ origin: g.origin, row: g.row, col: g.col,
        step });
    }
    const overlay = model.get("overlay") || {};
    // textContent, never innerHTML: the texts come from DICOM.
    title.textContent = [overlay.patient, overlay.study, overlay.series].filter(Boolean)
      .join("  |  ") + "   W " + Math.round(model.get("window_width")) + " C "
      + Math.round(model.get("window_center"));
    draws += 1;
    root.dataset.draws = String(draws);
    root.dataset.resliceMs = String(performance.now() - started);
    root.dataset.painted = "true";
    root.dataset.center = JSON.stringify(center);
  }
  // Each slice that could not be decoded is a plane (point, normal): where it
  // cuts view `v`, an orange dashed line; a view lying within it says so in words.
  function markMissing(v, g, view, x0, y0, scale, ratio) {
    const inside = [];
    let lines = 0;
    view.save();
    view.strokeStyle = MISSING_COLOUR;
    view.lineWidth = 2 * ratio;
    view.setLineDash([8 * ratio, 5 * ratio]);
    for (const plane of model.get("missing_planes") || []) {
      const n = plane.normal;
      // Signed distance (mm) from the plane at pixel (row, column) of the view.
      const atOrigin = dot(add(g.origin, plane.point, -1), n);
      const perRow = dot(g.row, n) * step;
      const perColumn = dot(g.col, n) * step;
      if (Math.abs(perRow) < 1e-6 && Math.abs(perColumn) < 1e-6) {
        if (Math.abs(atOrigin) <= plane.half_mm) inside.push(plane);
        continue;
      }
      const far = 4 * (g.nRows + g.nCols);
      // A hole of the series (band) is marked at both of its edges.
      for (const edge of plane.band ? [-plane.half_mm, plane.half_mm] : [0]) {
        const at = atOrigin - edge;
        let ends;
        if (Math.abs(perColumn) >= Math.abs(perRow)) {
          ends = [-far, far].map((r) => [r, -(at + perRow * r) / perColumn]);
        } else {
          ends = [-far, far].map((c) => [-(at + perColumn * c) / perRow, c]);
        }
        view.beginPath();
        ends.forEach(([r, c], i) => {
          const x = x0 + (c + 0.5) * scale;
          const y = y0 + (r + 0.5) * scale;
          if (i) view.lineTo(x, y); else view.moveTo(x, y);
        });
        view.stroke();
        lines += 1;
      }
    }
    view.restore();
    v.box.dataset.missingLines = String(lines);
    v.box.dataset.missingSlice = String(inside.length > 0);
    v.missing.hidden = !inside.length;
    if (inside.length) {
      const lost = inside.filter((plane) => !plane.text);
      v.missing.textContent = [
        ...(lost.length ? [lost.map((plane) => plane.label).join(", ")
          + " could not be decoded: this plane is blank, not the patient's image."]
          : []),
        ...inside.filter((plane) => plane.text).map((plane) => plane.text),
      ].join(" ");
    }
  }

  function requestDraw() {
    if (!pending) {
      pending = true;
      requestAnimationFrame(draw);
    }
  }

  model.on("msg:custom", (message, buffers) => {
    if (message.type !== "slices") return;
    const data = buffers[0];
    const bytes = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
    voxels.set(new Type(bytes), message.start * R * C);
    loaded += message.stop - message.start;
    root.dataset.slicesLoaded = String(loaded);
    if (loaded >= S) requestDraw();
  });
  for (const name of ["center_mm", "window_center", "window_width", "window_function",
    "invert", "slab_thickness_mm", "slab_mode", "oblique_deg", "show_crosshair"]) {
    model.on("change:" + name, () => { requestDraw(); syncControls(); });
  }

  function pointOf(v, event) {
    const rect = v.canvas.getBoundingClientRect();
    const x = (event.clientX - rect.left) * v.fit.ratio;
    const y = (event.clientY - rect.top) * v.fit.ratio;
    const column = (x - v.fit.x0) / v.fit.scale - 0.5;
    const row = (y - v.fit.y0) / v.fit.scale - 0.5;
    const g = v.geometry;
    return add(add(g.origin, g.row, row * step), g.col, column * step);
  }

  // Move the crosshair along a plane's normal by `steps` slices of that plane.
  function scrollPlane(name, v, from, steps) {
    const distance = name === "axial" ? spacing[0] : step;
    model.set("center_mm", add(from, v.geometry.normal, steps * distance));
    model.save_changes();
  }

  for (const [name, v] of Object.entries(views)) {
    let gesture = null;
    const pointers = new Map(); // touch pointers on this view: id -> [x, y]
    v.canvas.addEventListener("contextmenu", (event) => event.preventDefault());
    v.canvas.addEventListener("pointerdown", (event) => {
      if (!v.fit) return;
      v.canvas.setPointerCapture(event.pointerId);
      if (event.pointerType === "touch") {
        pointers.set(event.pointerId, [event.clientX, event.clientY]);
        if (pointers.size === 2) {
          const [a, b] = [...pointers.values()];
          gesture = { kind: "pinch", distance: Math.hypot(a[0] - b[0], a[1] - b[1]),
            zoom: v.zoom, middle: [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2],
            pan: [...v.pan] };
        } else if (pointers.size === 1) {
          // A tap or a swipe: which one is known when the finger moves or lifts.
          gesture = { kind: "touch", x: event.clientX, y: event.clientY, moved: false,
            from: model.get("center_mm"), tap: pointOf(v, event) };
        }
        return;
      }
      if (event.button === 2 || event.shiftKey) {
        gesture = { kind: "window", x: event.clientX, y: event.clientY,
          center: model.get("window_center"), width: model.get("window_width") };
      } else {
        gesture = { kind: "cross" };
        model.set("center_mm", pointOf(v, event));
        model.save_changes();
      }
    });
    v.canvas.addEventListener("pointermove", (event) => {
      if (!gesture || gesture.kind === "done") return;
      if (gesture.kind === "pinch" || gesture.kind === "touch") {
        if (!pointers.has(event.pointerId)) return;
        pointers.set(event.pointerId, [event.clientX, event.clientY]);
        if (gesture.kind === "pinch") {
          if (pointers.size !== 2) return;
          const [a, b] = [...pointers.values()];
          const distance = Math.hypot(a[0] - b[0], a[1] - b[1]);
          const middle = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
          v.zoom = Math.min(16, Math.max(0.25,
            gesture.zoom * distance / Math.max(1, gesture.distance)));
          v.pan = [gesture.pan[0] + middle[0] - gesture.middle[0],
            gesture.pan[1] + middle[1] - gesture.middle[1]];
          requestDraw();
          return;
        }
        const dy = event.clientY - gesture.y;
        if (!gesture.moved && Math.abs(dy) < 8
            && Math.abs(event.clientX - gesture.x) < 8) return;
        gesture.moved = true;
        scrollPlane(name, v, gesture.from, Math.round(dy / 12));
        return;
      }
      if (gesture.kind === "cross") {
        model.set("center_mm", pointOf(v, event));
      } else {
        const unit = Math.max(1, gesture.width / 256);
        model.set("window_width", Math.max(1, gesture.width + (event.clientX - gesture.x) * unit));
        model.set("window_center", gesture.center + (event.clientY - gesture.y) * unit);
      }
      model.save_changes();
    });
    const release = (event) => {
      if (gesture && gesture.kind === "touch" && !gesture.moved
          && event.type === "pointerup") {
        model.set("center_mm", gesture.tap);
        model.save_changes();
      }
      pointers.delete(event.pointerId);
      // Lifting one finger of a pinch ends it; the other does not start a swipe.
      if (!pointers.size || (gesture && gesture.kind === "pinch")) {
        gesture = pointers.size ? { kind: "done" } : null;
      }
    };
    v.canvas.addEventListener("pointerup", release);
    v.canvas.addEventListener("pointercancel", release);
    v.canvas.addEventListener("wheel", (event) => {
      event.preventDefault();
      if (!v.geometry) return;
      if (event.ctrlKey) {
        v.zoom = Math.min(16, Math.max(0.25, v.zoom * (event.deltaY < 0 ? 1.1 : 0.9)));
        requestDraw();
        return;
      }
      scrollPlane(name, v, model.get("center_mm"), event.deltaY > 0 ? 1 : -1);
    }, { passive: false });
  }

  const presetSelect = element("select", "lbx-presets", bar);
  presetSelect.setAttribute("aria-label", "Window preset");
  element("option", "", presetSelect).textContent = "Window…";
  (model.get("presets") || []).forEach(([name, center, width], i) => {
    const option = element("option", "", presetSelect);
    option.value = String(i);
    option.textContent = name + " (" + width + "/" + center + ")";
  });
  presetSelect.addEventListener("change", () => {
    const preset = (model.get("presets") || [])[Number(presetSelect.value)];
    presetSelect.selectedIndex = 0;
    if (!preset) return;
    model.set("window_center", preset[1]);
    model.set("window_width", preset[2]);
    model.set("window_function", preset[3] || "LINEAR");
    model.save_changes();
  });
  const slabLabel = element("label", "", bar);
  slabLabel.textContent = "Slab mm ";
  const thickness = element("input", "lbx-slab", slabLabel);
  thickness.type = "number";
  thickness.min = "0";
  thickness.step = "1";
  thickness.addEventListener("change", () => {
    model.set("slab_thickness_mm", Math.max(0, Number(thickness.value) || 0));
    model.save_changes();
  });
  const mode = element("select", "lbx-slab-mode", bar);
  mode.setAttribute("aria-label", "Slab mode");
  for (const [value, text] of [["mip", "MIP"], ["minip", "MinIP"], ["average", "Average"]]) {
    const option = element("option", "", mode);
    option.value = value;
    option.textContent = text;
  }
  mode.addEventListener("change", () => { model.set("slab_mode", mode.value); model.save_changes(); });
  const obliqueLabel = element("label", "", bar);
  obliqueLabel.textContent = "Oblique ";
  const oblique = element("input", "lbx-oblique", obliqueLabel);
  oblique.type = "range";
  oblique.min = "-90";
  oblique.max = "90";
  oblique.addEventListener("input", () => {
    model.set("oblique_deg", Number(oblique.value));
    model.save_changes();
  });
  const fitButton = element("button", "lbx-mpr-fit", bar);
  fitButton.type = "button";
  fitButton.textContent = "Fit";
  fitButton.title = "Undo the zoom and pan of every view";
  fitButton.addEventListener("click", () => {
    for (const v of Object.values(views)) { v.zoom = 1; v.pan = [0, 0]; }
    requestDraw();
  });
  const lines = element("button", "lbx-crosshair", bar);
  lines.type = "button";
  lines.textContent = "Crosshair";
  lines.addEventListener("click", () => {
    model.set("show_crosshair", !model.get("show_crosshair"));
    model.save_changes();
  });
  function syncControls() {
    lines.setAttribute("aria-pressed", String(model.get("show_crosshair")));
    thickness.value = String(model.get("slab_thickness_mm"));
    mode.value = model.get("slab_mode");
    oblique.value = String(model.get("oblique_deg"));
  }
  syncControls();

  const observer = new ResizeObserver(requestDraw);
  observer.observe(grid);
  model.send({ type: "ready" });
  return () => observer.disconnect();
}

export default { render };
