"""An OpenAI-protocol judge over HTTP (tests/inference_workers/chat_server.py) that prefers the longer answer.

It reads the two answers out of the MT-bench-style pairwise prompt (data/judges/templates.json) and answers
``[[A]]`` when the first shown is longer by more than a tenth, ``[[B]]`` when the second is, and ``[[C]]``
when their lengths (in words) are within a tenth of each other; it never looks at anything else. To a question
ending in ``?!`` it answers text with no verdict in it, which the parser must count as unparsed.
"""

import re

from tests.inference_workers.chat_server import ChatServer

ANSWER = re.compile(r"\[The Start of Assistant (A|B)'s Answer\]\n(.*?)\n\[The End of Assistant \1's Answer\]", re.S)
QUESTION = re.compile(r"\[User Question\]\n(.*?)\n\n\[The Start", re.S)


def words(text: str) -> int:
    return len(text.split())


class JudgeServer(ChatServer):
    def answer(self, body: dict) -> str:
        prompt = body["messages"][-1]["content"]
        question = QUESTION.search(prompt).group(1)
        answers = dict(ANSWER.findall(prompt))
        first, second = words(answers["A"]), words(answers["B"])
        if question.endswith("?!"):
            return "Both assistants wrote something. I would rather not choose."
        if first > 1.1 * second:
            verdict = "[[A]]"
        elif second > 1.1 * first:
            verdict = "[[B]]"
        else:
            verdict = "[[C]]"
        return f"Assistant A wrote {first} words and assistant B {second}. Longer is better.\n\n{verdict}"
