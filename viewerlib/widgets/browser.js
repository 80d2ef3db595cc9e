// Front end of the study browser: a search form, the archives' health and a results
// table. Every cell is set with textContent: names and descriptions come from DICOM.
// A row opens its study with one click; its "Compare with prior" button opens it
// beside the patient's prior. A badge says which other identifiers in the results
// are the same patient (linked by the kernel through issuer and Other Patient IDs).

const BROWSER_CSS = `
.lbx-browser { font: 13px/1.4 system-ui, sans-serif; }
.lbx-browser form { display: flex; flex-wrap: wrap; gap: 6px; align-items: end; }
.lbx-browser label { display: flex; flex-direction: column; font-size: 11px; }
.lbx-browser input { font-size: 13px; padding: 2px 4px; min-height: 24px; }
.lbx-browser table { border-collapse: collapse; margin-top: 6px; width: 100%; }
.lbx-browser td, .lbx-browser th { border-bottom: 1px solid #ddd; padding: 3px 6px;
  text-align: left; vertical-align: middle; }
.lbx-browser tbody tr { cursor: pointer; } .lbx-browser tbody tr:hover { background: #eef4fb; }
.lbx-browser canvas { width: 48px; height: 48px; background: #000; image-rendering: auto; }
.lbx-health span { margin-right: 10px; } .lbx-ok { color: #1b7f2a; }
.lbx-slow { color: #a66b00; } .lbx-down { color: #b00020; font-weight: 600; }
.lbx-linked { display: inline-block; margin-left: 6px; padding: 0 5px;
  border-radius: 8px; background: #e3eefb; color: #14487a; font-size: 11px; }
.lbx-browser button.lbx-compare { font-size: 12px; min-height: 28px;
  white-space: nowrap; cursor: pointer; }
`;

function render({ model, el }) {
  injectStyle("lbx-browser-style", BROWSER_CSS);
  const root = element("div", "lbx-browser", el);
  const health = element("div", "lbx-health", root);
  const form = element("form", "", root);
  // Patient names and IDs typed here must not stay in the browser's form history.
  form.autocomplete = "off";
  const fields = {};
  for (const [name, label, type] of [["patient_name", "Name", "text"],
    ["patient_id", "Patient ID", "text"], ["date_from", "From (YYYYMMDD)", "text"],
    ["date_to", "To (YYYYMMDD)", "text"], ["modality", "Modality", "text"],
    ["accession_number", "Accession", "text"]]) {
    const wrapper = element("label", "", form);
    wrapper.textContent = label;
    const input = element("input", "lbx-field-" + name, wrapper);
    input.type = type;
    input.name = name;
    input.autocomplete = "off";
    fields[name] = input;
  }
  const button = element("button", "lbx-search", form);
  button.type = "submit";
  button.textContent = "Search";
  const status = element("div", "lbx-status", root);
  const table = element("table", "", root);
  const headRow = element("tr", "", element("thead", "", table));
  for (const title of ["", "Patient", "ID", "Date", "Description", "Modalities",
    "Accession", "Archives", ""]) element("th", "", headRow).textContent = title;
  const body = element("tbody", "", table);
  const thumbnails = new Map();

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const message = { type: "search" };
    for (const [name, input] of Object.entries(fields)) message[name] = input.value.trim();
    status.textContent = "Searching…";
    model.send(message);
  });

  function showHealth() {
    health.replaceChildren();
    for (const h of model.get("health") || []) {
      const span = element("span", "lbx-" + h.state, health);
      span.textContent = h.archive + ": " + h.state + (h.message ? " (" + h.message + ")" : "");
    }
  }
  function showResults() {
    body.replaceChildren();
    thumbnails.clear();
    for (const row of model.get("results") || []) {
      const tr = element("tr", "lbx-result", body);
      tr.dataset.uid = row.uid;
      const canvas = element("canvas", "lbx-thumbnail", element("td", "", tr));
      thumbnails.set(row.uid, canvas);
      const nameCell = element("td", "lbx-patient", tr);
      element("span", "lbx-name", nameCell).textContent = row.name || "";
      if ((row.linked || []).length) {
        const badge = element("span", "lbx-linked", nameCell);
        badge.textContent = "same patient as " + row.linked.join(", ");
        badge.title = "Linked by Patient ID and issuer, never by name";
      }
      for (const key of ["patient_id", "date", "description", "modalities",
        "accession"]) element("td", "lbx-" + key, tr).textContent = row[key] || "";
      element("td", "lbx-archives", tr).textContent = (row.archives || []).join(", ");
      const compare = element("button", "lbx-compare", element("td", "", tr));
      compare.type = "button";
      compare.textContent = "Compare with prior";
      compare.addEventListener("click", (event) => {
        event.stopPropagation();
        status.textContent = "Finding the prior…";
        model.send({ type: "compare", uid: row.uid });
      });
      tr.addEventListener("click", () => {
        status.textContent = "Opening…";
        model.send({ type: "open", uid: row.uid });
      });
    }
  }
  model.on("msg:custom", (message, buffers) => {
    if (message.type !== "thumbnail") return;
    const canvas = thumbnails.get(message.uid);
    if (!canvas) return;
    const grey = new Uint8Array(buffers[0].buffer, buffers[0].byteOffset,
      buffers[0].byteLength);
    canvas.width = message.columns;
    canvas.height = message.rows;
    const context = canvas.getContext("2d");
    const image = context.createImageData(message.columns, message.rows);
    for (let i = 0; i < grey.length; i++) {
      image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = grey[i];
      image.data[4 * i + 3] = 255;
    }
    context.putImageData(image, 0, 0);
    canvas.dataset.painted = "true";
  });
  model.on("change:results", showResults);
  model.on("change:health", showHealth);
  model.on("change:status", () => { status.textContent = model.get("status"); });
  showHealth();
  showResults();
  return () => {};
}

export default { render };
