// Glossary of the letters used in shape comments throughout the code:
//   B  batch                      N  image tokens (patches, + class token if any)
//   T  text tokens (context)      D  hidden width of the tower at hand
//   H  attention heads            Dh head width (D / H)
//   V  vocabulary size            E  contrastive embedding width
//   Q  attentional-pooler queries C  image channels (3)
// Example: `/// tokens: [B, N, D] -> [B, Q, D]`.
#pragma once
