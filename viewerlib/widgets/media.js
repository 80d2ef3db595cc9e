// Front end of the media viewer: photographs, video and cine frames arrive from the
// kernel as RGB pixels and are painted on a canvas; a video plays by asking for frames a
// little ahead of the one shown. Frames live only in this page's memory (at most
// MEDIA_CACHE of them); texts from DICOM are set with textContent.

const MEDIA_CSS = `
.lbx-media { display: flex; flex-direction: column; background: #000; color: #e8e8e8;
  font: 12px/1.35 system-ui, sans-serif; height: var(--lbx-height, 560px);
  outline: none; user-select: none; }
.lbx-media .lbx-media-area { position: relative; flex: 1; overflow: hidden;
  touch-action: none; }
.lbx-media canvas.lbx-media-view { position: absolute; left: 0; top: 0; width: 100%;
  height: 100%; }
.lbx-media .lbx-media-head { position: absolute; top: 6px; left: 8px; white-space: pre;
  pointer-events: none; text-shadow: 0 0 3px #000; }
.lbx-media .lbx-media-bar { display: flex; gap: 4px; align-items: center; flex-wrap: wrap;
  padding: 3px 6px; background: rgba(20,20,20,.95); }
.lbx-media .lbx-media-bar button { background: #333; color: #eee; border: 1px solid #555;
  border-radius: 3px; min-height: 22px; font-size: 11px; cursor: pointer; }
.lbx-media .lbx-media-bar input[type=range] { flex: 1 1 200px; }
`;
const MEDIA_CACHE = 96;
const MEDIA_AHEAD = 12;

function render({ model, el }) {
  injectStyle("lbx-media-style", MEDIA_CSS);
  injectStyle("lbx-report-layout-style", REPORT_LAYOUT_CSS);
  const root = element("div", "lbx-media", el);
  root.tabIndex = 0;
  const area = element("div", "lbx-media-area", root);
  const view = element("canvas", "lbx-media-view", area);
  const head = element("div", "lbx-media-head", area);
  const bar = element("div", "lbx-media-bar", root);
  const overlay = model.get("overlay") || {};
  head.textContent = [overlay.patient, overlay.study, overlay.series].filter(Boolean)
    .join("\n");
  const frames = new Map(); // frame index -> canvas holding its pixels
  const asked = new Set();
  let zoom = 0; // 0 = fit
  let pan = [0, 0];
  let pending = false;
  let areaSize = [area.clientWidth, area.clientHeight];
  const count = () => model.get("number_of_frames");
  // Videos and cine loops play; photographs are stepped through.
  const playable = () => model.get("kind") !== "photo";
  root.dataset.kind = model.get("kind");

  function ask(start, stop) {
    let first = null;
    for (let i = start; i < Math.min(stop, count()); i++) {
      if (frames.has(i) || asked.has(i)) continue;
      if (first === null) first = i;
      asked.add(i);
    }
    if (first !== null) model.send({ type: "need", start: first, stop: Math.min(stop, count()) });
  }

  model.on("msg:custom", (message, buffers) => {
    if (message.type !== "frames") return;
    message.shapes.forEach(([rows, columns], k) => {
      const index = message.start + k;
      const data = buffers[k];
      const rgb = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      const canvas = document.createElement("canvas");
      canvas.width = columns;
      canvas.height = rows;
      const context = canvas.getContext("2d");
      const image = context.createImageData(columns, rows);
      for (let i = 0, o = 0; i < rgb.length; i += 3, o += 4) {
        image.data[o] = rgb[i]; image.data[o + 1] = rgb[i + 1];
        image.data[o + 2] = rgb[i + 2]; image.data[o + 3] = 255;
      }
      context.putImageData(image, 0, 0);
      frames.set(index, canvas);
      asked.delete(index);
    });
    // Keep the frames nearest the one shown.
    if (frames.size > MEDIA_CACHE) {
      const here = model.get("frame_index");
      const far = [...frames.keys()].sort((a, b) => Math.abs(b - here) - Math.abs(a - here));
      for (const index of far.slice(0, frames.size - MEDIA_CACHE)) frames.delete(index);
    }
    root.dataset.framesLoaded = String(frames.size);
    requestDraw();
  });

  function requestDraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(draw);
  }

  function draw() {
    pending = false;
    const index = model.get("frame_index");
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(areaSize[0]));
    const height = Math.max(1, Math.round(areaSize[1]));
    if (view.width !== width * ratio || view.height !== height * ratio) {
      view.width = width * ratio;
      view.height = height * ratio;
    }
    const context = view.getContext("2d");
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.fillStyle = "#000";
    context.fillRect(0, 0, view.width, view.height);
    const frame = frames.get(index);
    counter.textContent = (playable() ? "Frame " : "Photo ")
      + (index + 1) + " / " + count();
    if (!frame) {
      ask(index, index + MEDIA_AHEAD);
      root.dataset.painted = "false";
      return;
    }
    // Photos keep square pixels: fit to the panel, or zoom (1 = one CSS pixel each).
    const scale = zoom > 0 ? zoom
      : Math.min(width / frame.width, height / frame.height);
    const x = (width - frame.width * scale) / 2 + pan[0];
    const y = (height - frame.height * scale) / 2 + pan[1];
    context.setTransform(ratio * scale, 0, 0, ratio * scale, ratio * x, ratio * y);
    context.imageSmoothingEnabled = scale < 1;
    context.drawImage(frame, 0, 0);
    root.dataset.painted = "true";
    root.dataset.frameIndex = String(index);
    root.dataset.fit = JSON.stringify([scale, x, y]);
    if (playable()) ask(index + 1, index + 1 + MEDIA_AHEAD);
  }

  function show(index) {
    const target = ((index % count()) + count()) % count();
    model.set("frame_index", target);
    model.save_changes();
    requestDraw();
  }

  function button(label, onClick) {
    const node = element("button", "lbx-media-button", bar);
    node.type = "button";
    node.textContent = label;
    node.addEventListener("click", () => { onClick(); root.focus(); });
    return node;
  }
  button("\u25c0", () => show(model.get("frame_index") - 1));
  const play = button("Play", () => { model.set("playing", !model.get("playing"));
    model.save_changes(); });
  play.classList.add("lbx-media-play");
  play.hidden = !playable();
  button("\u25b6", () => show(model.get("frame_index") + 1));
  button("Fit", () => { zoom = 0; pan = [0, 0]; requestDraw(); });
  button("1:1", () => { zoom = 1 / (window.devicePixelRatio || 1); pan = [0, 0];
    requestDraw(); });
  const counter = element("span", "lbx-media-counter", bar);
  const slider = element("input", "lbx-media-slider", bar);
  slider.type = "range";
  slider.min = "0";
  slider.max = String(count() - 1);
  slider.value = String(model.get("frame_index"));
  slider.hidden = count() < 2;
  slider.addEventListener("input", () => show(Number(slider.value)));
  model.on("change:frame_index", () => { slider.value = String(model.get("frame_index"));
    requestDraw(); });

  // Playback at frames_per_second, paced by animation frames; a frame not yet here
  // holds the clock rather than being skipped.
  let last = null;
  function tick(time) {
    if (!model.get("playing")) {
      last = null; play.textContent = "Play"; root.dataset.playing = "false"; return;
    }
    play.textContent = "Pause";
    root.dataset.playing = "true";
    const interval = 1000 / Math.max(1, model.get("frames_per_second") || 25);
    if (last === null) last = time;
    const next = (model.get("frame_index") + 1) % count();
    if (time - last >= interval && frames.has(next)) {
      last += interval * Math.floor((time - last) / interval);
      model.set("frame_index", next);
      requestDraw();
    }
    requestAnimationFrame(tick);
  }
  model.on("change:playing", () => {
    if (model.get("playing")) requestAnimationFrame(tick);
    else model.save_changes();
  });

  root.addEventListener("wheel", (event) => {
    event.preventDefault();
    if (event.ctrlKey) {
      const frame = frames.get(model.get("frame_index"));
      const current = zoom > 0 ? zoom : frame
        ? Math.min(areaSize[0] / frame.width, areaSize[1] / frame.height) : 1;
      zoom = Math.min(32, Math.max(0.05, current * (event.deltaY < 0 ? 1.1 : 0.9)));
      requestDraw();
    } else {
      show(model.get("frame_index") + (event.deltaY > 0 ? 1 : -1));
    }
  }, { passive: false });
  let drag = null;
  view.addEventListener("pointerdown", (event) => {
    view.setPointerCapture(event.pointerId);
    drag = { x: event.clientX, y: event.clientY, pan: [...pan] };
  });
  view.addEventListener("pointermove", (event) => {
    if (!drag) return;
    pan = [drag.pan[0] + event.clientX - drag.x, drag.pan[1] + event.clientY - drag.y];
    requestDraw();
  });
  view.addEventListener("pointerup", () => { drag = null; });
  root.addEventListener("keydown", (event) => {
    const steps = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
    if (event.key in steps) {
      event.preventDefault();
      show(model.get("frame_index") + steps[event.key]);
    } else if (event.key === " ") {
      event.preventDefault();
      model.set("playing", !model.get("playing"));
    }
  });
  const observer = new ResizeObserver((entries) => {
    const box = entries[entries.length - 1].contentRect;
    areaSize = [box.width, box.height];
    requestDraw();
  });
  observer.observe(area);
  requestDraw();
  if (model.get("playing")) requestAnimationFrame(tick);
  return () => { observer.disconnect(); frames.clear(); };
}

export default { render };
