// Front end of the report viewer. Every string of the tree comes from a DICOM file
// and is set with textContent; a PDF is shown from a blob URL in this page's memory,
// revoked when the view goes away.

const REPORT_CSS = `
.lbx-report { background: #fff; color: #111; font: 13px/1.45 system-ui, sans-serif;
  padding: 8px 12px; max-height: var(--lbx-height, 560px); overflow: auto; }
.lbx-report ul { margin: 2px 0 2px 18px; padding: 0; list-style: disc; }
.lbx-report .lbx-name { font-weight: 600; }
.lbx-report .lbx-head { color: #444; margin-bottom: 6px; white-space: pre; }
.lbx-report iframe { width: 100%; height: 520px; border: 1px solid #ccc; }
`;

function render({ model, el }) {
  injectStyle("lbx-report-style", REPORT_CSS);
  const root = element("div", "lbx-report", el);
  const head = element("div", "lbx-head", root);
  const overlay = model.get("overlay") || {};
  head.textContent = [overlay.patient, overlay.study, overlay.series].filter(Boolean)
    .join("\n");

  function item(node, parent) {
    const entry = element("li", "lbx-item", parent);
    if (node.name) {
      element("span", "lbx-name", entry).textContent = node.name
        + (node.value ? ": " : "");
    }
    if (node.value) element("span", "lbx-value", entry).textContent = node.value;
    if (node.children && node.children.length) {
      const list = element("ul", "", entry);
      for (const child of node.children) item(child, list);
    }
  }
  const tree = model.get("tree");
  if (tree && Object.keys(tree).length) item(tree, element("ul", "lbx-tree", root));

  let url = null;
  model.on("msg:custom", (message, buffers) => {
    if (message.type !== "pdf") return;
    const blob = new Blob([buffers[0]], { type: "application/pdf" });
    url = URL.createObjectURL(blob);
    const frame = element("iframe", "lbx-pdf", root);
    frame.title = "Encapsulated PDF";
    frame.src = url;
    root.dataset.pdf = "shown";
  });
  root.dataset.painted = "true";
  model.send({ type: "ready" });
  return () => { if (url) URL.revokeObjectURL(url); };
}

export default { render };
