// Front end of the report viewer. Every string of the tree comes from a DICOM file
// and is set with textContent, never as HTML.

const REPORT_CSS = `
.lbx-report { background: #fff; color: #111; font: 13px/1.45 system-ui, sans-serif;
  padding: 8px 12px; max-height: var(--lbx-height, 560px); overflow: auto; }
.lbx-report ul { margin: 2px 0 2px 18px; padding: 0; list-style: disc; }
.lbx-report .lbx-name { font-weight: 600; }
.lbx-report .lbx-head { color: #444; margin-bottom: 6px; white-space: pre; }
`;

function render({ model, el }) {
  injectStyle("lbx-report-style", REPORT_CSS);
  injectStyle("lbx-report-layout-style", REPORT_LAYOUT_CSS);
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

  root.dataset.painted = "true";
}

export default { render };
