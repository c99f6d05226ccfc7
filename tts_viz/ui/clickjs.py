"""The tree-click bridge: page JavaScript that forwards plotly_click to Python.

gr.Plot has no click event for Python. This script (installed with launch(js=...)) watches
the page for plotly graph divs inside the element with id TREE_ID, attaches a plotly_click
handler, writes the clicked point's customdata (the node id) into the hidden Textbox CLICK_ID,
and clicks the hidden Button CLICK_BTN_ID, whose Python handler fills the inspector
(the recipe verified in DESIGN.md). It re-attaches after plotly re-creates its event
emitter (a new figure), and never evaluates page text.
"""

TREE_IDS = ("tts-tree", "tts-tree-a", "tts-tree-b")
CLICK_ID = "tts-click-id"
CLICK_BTN_ID = "tts-click-btn"

CLICK_JS = """
() => {
  const TREES = %(trees)s;
  const onClick = (treeId) => (ev) => {
    if (!ev || !ev.points || !ev.points.length) return;
    const p = ev.points.find(q => q.data && q.data.name === 'nodes' && q.customdata !== undefined)
           || ev.points.find(q => q.customdata !== undefined);
    if (!p) return;
    const id = Array.isArray(p.customdata) ? p.customdata[0] : p.customdata;
    const box = document.querySelector('#%(click)s textarea, #%(click)s input');
    const btn = document.querySelector('#%(btn)s');
    if (!box || !btn) return;
    box.value = treeId + ':' + String(id);
    box.dispatchEvent(new Event('input', {bubbles: true}));
    setTimeout(() => btn.click(), 60);
  };
  // a tree wider than its panel scrolls sideways: bring the chosen leaf (else the root) into view
  const centre = (host, gd) => {
    if (!gd._fullLayout || host.scrollWidth <= host.clientWidth + 4) return;
    const tr = (gd.data || []).find(t => t.name === 'nodes');
    if (!tr) return;
    const path = ((gd.layout || {}).meta || {}).selected_path || [];
    let k = tr.customdata.indexOf(0);
    let best = 1;
    for (const id of path) {
      const j = tr.customdata.indexOf(id);
      if (j >= 0 && -tr.y[j] >= best) { best = -tr.y[j]; k = j; }
    }
    if (k < 0) return;
    const px = gd._fullLayout.margin.l + gd._fullLayout.xaxis.l2p(tr.x[k]);
    host.scrollLeft = Math.max(0, px - host.clientWidth / 2);
  };
  const attach = () => {
    for (const treeId of TREES) {
      const host = document.getElementById(treeId);
      if (!host) continue;
      host.querySelectorAll('.js-plotly-plot').forEach((gd) => {
        if (!gd.on || !gd._ev) return;
        if (gd.__ttsEv === gd._ev) return;  // already attached to this emitter
        gd.__ttsEv = gd._ev;
        gd.on('plotly_click', onClick(treeId));
        centre(host, gd);
      });
    }
  };
  let pending = false;
  new MutationObserver(() => {
    if (pending) return;
    pending = true;
    setTimeout(() => { pending = false; attach(); }, 120);
  }).observe(document.body, {childList: true, subtree: true});
  setInterval(attach, 1500);  // belt and braces: plotly may re-plot without a DOM mutation
  attach();
}
""" % {"trees": repr(list(TREE_IDS)).replace("'", '"'), "click": CLICK_ID, "btn": CLICK_BTN_ID}
