"""The intake: the facts a report gives, read from its mail and attached logs.

Pure: no database, no network. `facts` names them and says which a kind of report needs;
`extraction` reads a first mail or a reply; `logs` tells which attachments are logs and
reads them within bounds; `answers` reads a reply to the ask; `patterns` is the table of
words and patterns each fact is read by, per language.
"""
