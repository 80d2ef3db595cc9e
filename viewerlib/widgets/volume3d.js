// Front end of the 3D viewer: a WebGL2 raycaster over an 8-bit 3D texture. Each pixel
// casts a parallel ray through the volume's box, compositing front to back through a
// transfer function (with gradient shading) or keeping the maximum (MIP). The volume
// lives only in this page's memory (a GPU texture); nothing is stored.

const VOLUME_CSS = `
.lbx-3d { position: relative; background: #000; color: #e8e8e8; user-select: none;
  font: 12px/1.35 system-ui, sans-serif; height: var(--lbx-height, 420px);
  touch-action: none; }
.lbx-3d canvas { width: 100%; height: calc(100% - 28px); display: block; cursor: grab; }
.lbx-3d .lbx-corner { position: absolute; top: 6px; left: 8px; white-space: pre;
  pointer-events: none; text-shadow: 0 0 3px #000; }
.lbx-3d-bar { height: 28px; display: flex; gap: 4px; align-items: center; padding: 0 6px;
  background: #141414; }
.lbx-3d-bar button { background: #333; color: #eee; border: 1px solid #555;
  border-radius: 3px; font-size: 11px; }
.lbx-3d-bar button[aria-pressed="true"] { background: #1e5a8c; }
`;

// Transfer functions as (HU, red, green, blue, opacity) control points.
const TRANSFER_FUNCTIONS = {
  "CT bone": [[-1024, 0, 0, 0, 0], [140, 0.75, 0.55, 0.4, 0], [300, 0.9, 0.8, 0.65, 0.25],
    [700, 1, 0.96, 0.88, 0.7], [3071, 1, 1, 1, 0.9]],
  "CT angiography": [[-1024, 0, 0, 0, 0], [90, 0.6, 0.2, 0.15, 0], [180, 0.85, 0.25, 0.2, 0.06],
    [300, 1, 0.35, 0.3, 0.45], [500, 1, 0.85, 0.75, 0.6], [3071, 1, 1, 1, 0.85]],
};
const MIP_WINDOW = [-100, 1500]; // HU shown from black to white in the MIP

const VERTEX = `#version 300 es
in vec2 position; out vec2 uv;
void main() { uv = position; gl_Position = vec4(position, 0.0, 1.0); }`;

const FRAGMENT = `#version 300 es
precision highp float; precision highp sampler3D;
uniform sampler3D volume; uniform sampler2D transfer;
uniform vec3 extent, right, up, forward, texel;
uniform float radius, aspect, stepSize, mipLow, mipHigh;
uniform int mode;
in vec2 uv; out vec4 colour;
void main() {
  vec3 origin = right * uv.x * radius * aspect + up * uv.y * radius - forward * 2.0 * radius;
  vec3 direction = forward + vec3(1e-7);
  vec3 half_extent = extent * 0.5;
  vec3 t0 = (-half_extent - origin) / direction, t1 = (half_extent - origin) / direction;
  vec3 near3 = min(t0, t1), far3 = max(t0, t1);
  float near = max(max(near3.x, near3.y), near3.z);
  float far = min(min(far3.x, far3.y), far3.z);
  if (far <= max(near, 0.0)) { colour = vec4(0.0, 0.0, 0.0, 1.0); return; }
  vec4 sum = vec4(0.0); float highest = 0.0;
  // A per-pixel start offset turns wood-grain banding into fine noise.
  float jitter = fract(sin(dot(gl_FragCoord.xy, vec2(12.9898, 78.233))) * 43758.5453);
  for (int i = 0; i < 2048; i++) {
    float t = near + (float(i) + jitter) * stepSize;
    if (t > far) break;
    vec3 p = (origin + direction * t) / extent + 0.5;
    float v = texture(volume, p).r;
    if (mode == 1) { highest = max(highest, v); continue; }
    vec4 s = texture(transfer, vec2(v, 0.5));
    if (s.a < 0.003) continue;
    vec3 g = vec3(texture(volume, p + vec3(texel.x, 0, 0)).r - texture(volume, p - vec3(texel.x, 0, 0)).r,
                  texture(volume, p + vec3(0, texel.y, 0)).r - texture(volume, p - vec3(0, texel.y, 0)).r,
                  texture(volume, p + vec3(0, 0, texel.z)).r - texture(volume, p - vec3(0, 0, texel.z)).r);
    float light = 0.3 + 0.7 * abs(dot(normalize(g / extent * extent.x + vec3(1e-6)), forward));
    float a = 1.0 - pow(1.0 - s.a, stepSize);
    sum.rgb += (1.0 - sum.a) * a * s.rgb * light;
    sum.a += (1.0 - sum.a) * a;
    if (sum.a > 0.97) break;
  }
  if (mode == 1) {
    float grey = clamp((highest - mipLow) / (mipHigh - mipLow), 0.0, 1.0);
    colour = vec4(grey, grey, grey, 1.0);
  } else {
    colour = vec4(sum.rgb, 1.0);
  }
}`;

function render({ model, el }) {
  injectStyle("lbx-3d-style", VOLUME_CSS);
  const root = element("div", "lbx-3d", el);
  const canvas = element("canvas", "lbx-3d-canvas", root);
  const label = element("div", "lbx-corner", root);
  const bar = element("div", "lbx-3d-bar", root);
  const gl = canvas.getContext("webgl2", { preserveDrawingBuffer: true, antialias: false });
  root.dataset.webgl = gl ? "webgl2" : "none";
  if (!gl) {
    label.textContent = "This browser has no WebGL2: the 3D view is unavailable.";
    return () => {};
  }
  const [S, R, C] = model.get("texture_shape");
  const [low, high] = model.get("value_range");
  const toLevel = (value) => Math.min(1, Math.max(0, (value - low) / (high - low)));

  function compile(type, source) {
    const shader = gl.createShader(type);
    gl.shaderSource(shader, source);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) {
      throw new Error("3D viewer shader: " + gl.getShaderInfoLog(shader));
    }
    return shader;
  }
  const program = gl.createProgram();
  gl.attachShader(program, compile(gl.VERTEX_SHADER, VERTEX));
  gl.attachShader(program, compile(gl.FRAGMENT_SHADER, FRAGMENT));
  gl.linkProgram(program);
  gl.useProgram(program);
  const buffer = gl.createBuffer();
  gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
  gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 3, -1, -1, 3]), gl.STATIC_DRAW);
  const position = gl.getAttribLocation(program, "position");
  gl.enableVertexAttribArray(position);
  gl.vertexAttribPointer(position, 2, gl.FLOAT, false, 0, 0);
  const uniform = (name) => gl.getUniformLocation(program, name);

  const volumeTexture = gl.createTexture();
  const transferTexture = gl.createTexture();
  let ready = false;
  let pending = false;
  let draws = 0;

  function uploadTransfer() {
    const preset = model.get("preset");
    const points = TRANSFER_FUNCTIONS[preset] || TRANSFER_FUNCTIONS["CT bone"];
    const table = new Uint8Array(256 * 4);
    for (let i = 0; i < 256; i++) {
      const hu = low + (i / 255) * (high - low);
      let k = 0;
      while (k < points.length - 2 && hu > points[k + 1][0]) k++;
      const [a, b] = [points[k], points[k + 1]];
      const f = Math.min(1, Math.max(0, (hu - a[0]) / (b[0] - a[0])));
      for (let channel = 0; channel < 4; channel++) {
        table[4 * i + channel] = 255 * (a[channel + 1] + f * (b[channel + 1] - a[channel + 1]));
      }
    }
    gl.activeTexture(gl.TEXTURE1);
    gl.bindTexture(gl.TEXTURE_2D, transferTexture);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA8, 256, 1, 0, gl.RGBA, gl.UNSIGNED_BYTE, table);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
  }

  // Camera: first from the front (looking posterior, head up), then turned by yaw
  // about the head-foot axis and pitch about the screen's horizontal.
  function camera() {
    const yaw = model.get("yaw_deg") * Math.PI / 180;
    const pitch = model.get("pitch_deg") * Math.PI / 180;
    const turn = (v) => [Math.cos(yaw) * v[0] - Math.sin(yaw) * v[1],
      Math.sin(yaw) * v[0] + Math.cos(yaw) * v[1], v[2]];
    let right = turn([1, 0, 0]);
    let forward = turn([0, 1, 0]);
    let up = [0, 0, 1];
    const tilt = (a, b) => a.map((x, i) => Math.cos(pitch) * x + Math.sin(pitch) * b[i]);
    [forward, up] = [tilt(forward, up), tilt(up, forward.map((x) => -x))];
    // The volume's z is slice order; its y (rows) runs posterior and x (columns) left.
    return { right, up, forward };
  }

  function draw() {
    pending = false;
    if (!ready) return;
    const started = performance.now();
    const box = canvas.getBoundingClientRect();
    // Rays are the cost; half the CSS resolution keeps software WebGL interactive.
    const width = Math.max(1, Math.round(box.width / 2));
    const height = Math.max(1, Math.round(box.height / 2));
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    gl.viewport(0, 0, width, height);
    const extent = model.get("extent_mm");
    // Texture x, y, z are columns, rows, slices.
    const box3 = [extent[2], extent[1], extent[0]];
    // Half the view spans a bit more than the largest side of the box.
    const radius = 0.6 * Math.max(...box3);
    const { right, up, forward } = camera();
    gl.uniform3fv(uniform("extent"), box3);
    gl.uniform3fv(uniform("right"), right);
    gl.uniform3fv(uniform("up"), up);
    gl.uniform3fv(uniform("forward"), forward);
    gl.uniform3fv(uniform("texel"), [1 / C, 1 / R, 1 / S]);
    gl.uniform1f(uniform("radius"), radius);
    gl.uniform1f(uniform("aspect"), width / height);
    gl.uniform1f(uniform("stepSize"), Math.min(box3[0] / C, box3[1] / R, box3[2] / S));
    gl.uniform1f(uniform("mipLow"), toLevel(MIP_WINDOW[0]));
    gl.uniform1f(uniform("mipHigh"), toLevel(MIP_WINDOW[1]));
    gl.uniform1i(uniform("mode"), model.get("preset") === "MIP" ? 1 : 0);
    gl.uniform1i(uniform("volume"), 0);
    gl.uniform1i(uniform("transfer"), 1);
    gl.drawArrays(gl.TRIANGLES, 0, 3);
    gl.finish();
    draws += 1;
    root.dataset.draws = String(draws);
    root.dataset.painted = "true";
    root.dataset.preset = model.get("preset");
    root.dataset.drawMs = String(performance.now() - started);
    const overlay = model.get("overlay") || {};
    label.textContent = [overlay.patient, overlay.series, model.get("preset")]
      .filter(Boolean).join("\n");
    for (const [name, button] of buttons) {
      button.setAttribute("aria-pressed", String(name === model.get("preset")));
    }
  }
  function requestDraw() {
    if (!pending) {
      pending = true;
      requestAnimationFrame(draw);
    }
  }

  model.on("msg:custom", (message, buffers) => {
    if (message.type !== "volume") return;
    const data = new Uint8Array(buffers[0].buffer, buffers[0].byteOffset,
      buffers[0].byteLength);
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_3D, volumeTexture);
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
    gl.texImage3D(gl.TEXTURE_3D, 0, gl.R8, C, R, S, 0, gl.RED, gl.UNSIGNED_BYTE, data);
    for (const [name, value] of [[gl.TEXTURE_MIN_FILTER, gl.LINEAR],
      [gl.TEXTURE_MAG_FILTER, gl.LINEAR], [gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE],
      [gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE], [gl.TEXTURE_WRAP_R, gl.CLAMP_TO_EDGE]]) {
      gl.texParameteri(gl.TEXTURE_3D, name, value);
    }
    uploadTransfer();
    ready = true;
    requestDraw();
  });
  model.on("change:preset", () => { uploadTransfer(); requestDraw(); });
  model.on("change:yaw_deg", requestDraw);
  model.on("change:pitch_deg", requestDraw);

  let drag = null;
  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    drag = { x: event.clientX, y: event.clientY, yaw: model.get("yaw_deg"),
      pitch: model.get("pitch_deg") };
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drag) return;
    model.set("yaw_deg", drag.yaw + (event.clientX - drag.x) * 0.5);
    model.set("pitch_deg", Math.max(-89, Math.min(89, drag.pitch + (event.clientY - drag.y) * 0.5)));
    model.save_changes();
  });
  canvas.addEventListener("pointerup", () => { drag = null; });

  const buttons = ["CT bone", "CT angiography", "MIP"].map((name) => {
    const button = element("button", "lbx-button", bar);
    button.type = "button";
    button.textContent = name;
    button.addEventListener("click", () => { model.set("preset", name); model.save_changes(); });
    return [name, button];
  });
  const reset = element("button", "lbx-button", bar);
  reset.textContent = "Front";
  reset.addEventListener("click", () => {
    model.set("yaw_deg", 0);
    model.set("pitch_deg", 0);
    model.save_changes();
  });

  const observer = new ResizeObserver(requestDraw);
  observer.observe(root);
  model.send({ type: "ready" });
  return () => {
    observer.disconnect();
    gl.deleteTexture(volumeTexture);
    gl.deleteTexture(transferTexture);
  };
}

export default { render };
