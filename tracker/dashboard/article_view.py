"""An article's text with its claims highlighted in place, each highlight a link to its
claim. A Streamlit v2 component, because a plain HTML link would reload the app and
start a new session (a typed reviewer name would be lost); the click comes back to
Python instead, which opens the claim page in the same session.

The article is untrusted: the script puts every piece of it into the page with
textContent, never as HTML, so nothing in it can run or render as markup.
"""

from __future__ import annotations

import streamlit as st

from tracker.articles import Stretch
from tracker.dashboard.common import STATUS_COLOURS
from tracker.review import status_words

_CSS = """
.article { white-space: pre-wrap; overflow-wrap: anywhere; line-height: 1.7;
           font-size: 1rem; color: var(--st-text-color); max-width: 60rem; }
.legend { margin-bottom: 0.75rem; font-size: 0.85rem; color: var(--st-text-color); }
.legend span { display: inline-block; width: 0.8rem; height: 0.8rem; margin: 0 0.3rem 0 0.8rem;
               border-radius: 2px; vertical-align: middle; background: var(--swatch); }
.article mark { cursor: pointer; border-radius: 3px; padding: 0 1px; color: inherit;
                border-bottom: 3px solid var(--claim-colour); background: var(--claim-tint); }
.article mark:hover, .article mark:focus { outline: 2px solid var(--claim-colour); }
.article sup { font-size: 0.7em; color: var(--claim-colour); font-weight: 600; }
"""

_JS = """
export default function(component) {
  const { data, setTriggerValue, parentElement } = component;
  const legend = document.createElement('div');
  legend.className = 'legend';
  legend.appendChild(document.createTextNode('Highlights by status:'));
  for (const [name, colour] of data.legend) {
    const swatch = document.createElement('span');
    swatch.style.setProperty('--swatch', colour);
    legend.appendChild(swatch);
    legend.appendChild(document.createTextNode(name));
  }
  parentElement.appendChild(legend);
  const root = document.createElement('div');
  root.className = 'article';
  for (const piece of data.pieces) {
    if (!piece.claims.length) {
      root.appendChild(document.createTextNode(piece.text));
      continue;
    }
    const first = piece.claims[0];
    const mark = document.createElement('mark');
    mark.textContent = piece.text;
    mark.tabIndex = 0;
    mark.setAttribute('role', 'link');
    mark.dataset.claim = String(first.id);
    mark.title = piece.claims.map(c => `Claim ${c.id}: ${c.status}`).join('\\n');
    mark.setAttribute('aria-label', `Open claim ${first.id} (${first.status})`);
    mark.style.setProperty('--claim-colour', first.colour);
    mark.style.setProperty('--claim-tint', first.colour + '33');
    const open = () => setTriggerValue('open', first.id);
    mark.onclick = open;
    mark.onkeydown = (e) => {
      if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(); }
    };
    root.appendChild(mark);
    if (piece.last) {
      const sup = document.createElement('sup');
      sup.textContent = piece.claims.map(c => c.id).join(',');
      sup.style.setProperty('--claim-colour', first.colour);
      root.appendChild(sup);
    }
  }
  parentElement.appendChild(root);
  return () => { legend.remove(); root.remove(); };
}
"""

_component = st.components.v2.component("claim_tracker.article", css=_CSS, js=_JS)


def article_view(pieces: list[Stretch], *, key: str) -> int | None:
    """Draw the article; returns the id of the claim whose highlight was just clicked (or
    pressed with Enter), else None."""
    data = []
    for number, piece in enumerate(pieces):
        following = pieces[number + 1].claims if number + 1 < len(pieces) else []
        data.append(
            {
                "text": piece.text,
                "last": bool(piece.claims)
                and {c.id for c in following} != {c.id for c in piece.claims},
                "claims": [
                    {
                        "id": c.id,
                        "status": status_words(c.status) + (", dismissed" if c.dismissed else ""),
                        "colour": STATUS_COLOURS["dismissed" if c.dismissed else c.status],
                    }
                    for c in piece.claims
                ],
            }
        )
    legend = [[status_words(name), colour] for name, colour in STATUS_COLOURS.items()]
    result = _component(
        data={"pieces": data, "legend": legend}, key=key, on_open_change=lambda: None
    )
    return result.open if isinstance(result.open, int) else None
